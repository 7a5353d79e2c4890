/*
 * Tone generator: call progress tones, DTMF digit strings, the CAS alerting tone.
 *
 * Why phasors: each component is a unit complex number rotated by a fixed step per sample, which
 * gives exact frequencies and phase continuity across frames and segments without a sine call
 * per sample; the phasors are renormalised once per frame so rounding cannot make them drift.
 * The envelope is exactly zero outside an on period, so cadence edges fall on the planned sample.
 */
#include <math.h>

#include "tipring_dsp.h"

#define TR_FS 8000.0
#define TR_PI 3.14159265358979323846
#define TR_MAX_COMP 4
#define TR_MAX_SEG 32

/* 0 dBm0 is a sine of peak 32768 * 10^(-3.14/20): G.711 full scale is +3.14 dBm0. */
static double peak_from_dbm0(double dbm0)
{
    return 32768.0 * pow(10.0, (dbm0 - 3.14) / 20.0);
}

static void load_segment(tr_tone_gen_t *g)
{
    const tr_tone_segment_t *s = &g->plan.seg[g->seg];
    for (int c = 0; c < TR_MAX_COMP; c++) {
        if (c < s->n_comp) {
            double w = 2.0 * TR_PI * s->comp[c].freq_hz / TR_FS;
            g->wre[c] = cos(w);
            g->wim[c] = sin(w);
            g->amp[c] = peak_from_dbm0(s->comp[c].level_dbm0);
        } else {
            g->wre[c] = 1.0;
            g->wim[c] = 0.0;
            g->amp[c] = 0.0;
        }
    }
}

int tr_tone_start(tr_tone_gen_t *g, const tr_tone_plan_t *plan)
{
    if (plan->n_seg < 1 || plan->n_seg > TR_MAX_SEG || plan->loop_from >= plan->n_seg ||
        plan->ramp_samples < 0)
        return -1;
    for (int i = 0; i < plan->n_seg; i++) {
        const tr_tone_segment_t *s = &plan->seg[i];
        if (s->n_comp < 0 || s->n_comp > TR_MAX_COMP || s->off_samples < 0)
            return -1;
        if (s->on_samples >= 0 && (int64_t)s->on_samples + s->off_samples == 0)
            return -1;                                  /* an empty segment */
        for (int c = 0; c < s->n_comp; c++)
            if (!(s->comp[c].freq_hz >= 0.0f && s->comp[c].freq_hz < 4000.0f))
                return -1;
    }
    g->plan = *plan;
    g->seg = 0;
    g->pos = 0;
    for (int c = 0; c < TR_MAX_COMP; c++) {
        g->re[c] = 1.0;
        g->im[c] = 0.0;
    }
    load_segment(g);
    return 0;
}

/* Raised-cosine envelope at sample k of an on period of length len (len < 0: endless). */
static double envelope(int64_t k, int64_t len, int32_t ramp)
{
    int64_t r = ramp;
    if (len >= 0 && r > len / 2)
        r = len / 2;
    if (r <= 0)
        return 1.0;
    if (k < r)
        return 0.5 * (1.0 - cos(TR_PI * ((double)k + 0.5) / (double)r));
    if (len >= 0 && k >= len - r)
        return 0.5 * (1.0 - cos(TR_PI * ((double)(len - k) - 0.5) / (double)r));
    return 1.0;
}

static int16_t saturate(long v)
{
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

int tr_tone_generate(tr_tone_gen_t *g, int16_t *out, size_t n, int mix)
{
    for (size_t i = 0; i < n; i++) {
        if (g->seg >= g->plan.n_seg) {
            if (!mix)
                out[i] = 0;
            continue;
        }
        const tr_tone_segment_t *s = &g->plan.seg[g->seg];
        double v = 0.0;
        if (s->on_samples < 0 || g->pos < s->on_samples) {
            for (int c = 0; c < s->n_comp; c++)
                v += g->amp[c] * g->im[c];
            v *= envelope(g->pos, s->on_samples, g->plan.ramp_samples);
        }
        for (int c = 0; c < TR_MAX_COMP; c++) {
            double re = g->re[c] * g->wre[c] - g->im[c] * g->wim[c];
            g->im[c] = g->re[c] * g->wim[c] + g->im[c] * g->wre[c];
            g->re[c] = re;
        }
        long q = lrint(v);
        out[i] = saturate(mix ? (long)out[i] + q : q);
        g->pos++;
        if (s->on_samples >= 0 && g->pos >= (int64_t)s->on_samples + s->off_samples) {
            g->pos = 0;
            g->seg++;
            if (g->seg >= g->plan.n_seg && g->plan.loop_from >= 0)
                g->seg = g->plan.loop_from;
            if (g->seg < g->plan.n_seg)
                load_segment(g);
        }
    }
    for (int c = 0; c < TR_MAX_COMP; c++) {
        double norm = 1.0 / sqrt(g->re[c] * g->re[c] + g->im[c] * g->im[c]);
        g->re[c] *= norm;
        g->im[c] *= norm;
    }
    return g->seg < g->plan.n_seg;
}
