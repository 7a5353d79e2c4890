/*
 * Caller-ID FSK modulator (Bell 202 and ITU-T V.23 at 1200 baud) for on-hook and call-waiting
 * caller ID. The message bytes are built by the caller; this file turns them into line audio one
 * frame at a time, so the line logic can interleave it with ringing and silence periods.
 *
 * Why a single phasor: switching its per-sample rotation between the mark and space steps keeps
 * the phase continuous at every bit edge, which is what the FSK receivers in phones expect.
 */
#include <math.h>

#include "tipring_dsp.h"

#define FS 8000
#define BAUD 1200
#define PI 3.14159265358979323846
#define RAMP 8                      /* samples (1 ms) of raised-cosine rise and fall */

static int bit_value(const tr_fsk_tx_t *s, int64_t k)
{
    if (k < s->seizure_bits)
        return (int)(k & 1);        /* 0101...: starts with a space */
    k -= s->seizure_bits;
    if (k < s->mark_bits)
        return 1;
    k -= s->mark_bits;
    int64_t frame = 9 + s->stop_bits;
    if (k < (int64_t)s->len * frame) {
        int64_t pos = k % frame;
        if (pos == 0)
            return 0;               /* start bit */
        if (pos <= 8)
            return (s->data[k / frame] >> (pos - 1)) & 1;
        return 1;                   /* stop bits */
    }
    return 1;                       /* postamble marks */
}

int tr_fsk_tx_start(tr_fsk_tx_t *s)
{
    if (s->seizure_bits < 0 || s->mark_bits < 0 || s->stop_bits < 1 || s->stop_bits > 8 ||
        s->postamble_bits < 0 || s->len < 0 || s->len > 256 ||
        !(s->mark_hz > 0.0f && s->mark_hz < 4000.0f) ||
        !(s->space_hz > 0.0f && s->space_hz < 4000.0f) || s->level_dbm0 > 3.0f)
        return -1;
    s->total_bits = (int64_t)s->seizure_bits + s->mark_bits +
                    (int64_t)s->len * (9 + s->stop_bits) + s->postamble_bits;
    s->total_samples = (s->total_bits * FS + BAUD - 1) / BAUD;
    s->bit = 0;
    s->baud_phase = 0;
    s->sample = 0;
    s->re = 1.0;
    s->im = 0.0;
    s->amp = 32768.0 * pow(10.0, (s->level_dbm0 - 3.14) / 20.0);
    s->mark_re = cos(2.0 * PI * s->mark_hz / FS);
    s->mark_im = sin(2.0 * PI * s->mark_hz / FS);
    s->space_re = cos(2.0 * PI * s->space_hz / FS);
    s->space_im = sin(2.0 * PI * s->space_hz / FS);
    return 0;
}

int tr_fsk_tx(tr_fsk_tx_t *s, int16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->sample >= s->total_samples) {
            out[i] = 0;
            continue;
        }
        double env = 1.0;
        int64_t left = s->total_samples - 1 - s->sample;
        int64_t edge = s->sample < left ? s->sample : left;
        if (edge < RAMP)
            env = 0.5 * (1.0 - cos(PI * ((double)edge + 0.5) / RAMP));
        out[i] = (int16_t)lrint(s->amp * env * s->im);
        int one = bit_value(s, s->bit);
        double wr = one ? s->mark_re : s->space_re, wi = one ? s->mark_im : s->space_im;
        double re = s->re * wr - s->im * wi;
        s->im = s->re * wi + s->im * wr;
        s->re = re;
        s->sample++;
        s->baud_phase += BAUD;
        if (s->baud_phase >= FS) {
            s->baud_phase -= FS;
            s->bit++;
        }
    }
    double norm = 1.0 / sqrt(s->re * s->re + s->im * s->im);
    s->re *= norm;
    s->im *= norm;
    return s->sample < s->total_samples;
}
