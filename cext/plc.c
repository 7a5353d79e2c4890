/*
 * Packet loss concealment for G.711 by pitch-synchronous waveform repetition (the approach of
 * ITU-T G.711 Appendix I, written for a zero-delay playout path). See tipring_dsp.h for the
 * behaviour; the notes here are about how.
 *
 * - No look-ahead delay: Appendix I delays output by 3.75 ms so it can rewrite the samples
 *   before a loss. We cannot change what already went to the line, so instead the repeated
 *   cycle is made seamless by cross-fading its last P/4 samples into the samples that precede
 *   its first one in the original signal: each wrap then continues the waveform smoothly.
 * - The waveform to repeat is taken once, at loss onset (`onset`), so 2P and 3P cycles after
 *   10 and 20 ms come from real speech, never from earlier synthetic output.
 */
#include <math.h>
#include <string.h>

#include "tipring_dsp.h"

enum {
    CORRELATION_WINDOW = 160,
    ONSET = 3 * TR_PLC_PITCH_MAX + TR_PLC_PITCH_MAX / 4,  /* 3 periods + the fade-in lead */
    FADE_START = 80,                                      /* 10 ms at full level */
    FADE_END = 480,                                       /* silent from 60 ms */
    MERGE_MAX = 80,
};

void tr_plc_init(tr_plc_t *plc)
{
    memset(plc, 0, sizeof *plc);
}

static void push_history(tr_plc_t *plc, const int16_t *s, int32_t n)
{
    if (n >= TR_PLC_HISTORY) {
        memcpy(plc->history, s + n - TR_PLC_HISTORY, sizeof plc->history);
        return;
    }
    memmove(plc->history, plc->history + n, (size_t)(TR_PLC_HISTORY - n) * sizeof(int16_t));
    memcpy(plc->history + TR_PLC_HISTORY - n, s, (size_t)n * sizeof(int16_t));
}

/* The lag in [PITCH_MIN, PITCH_MAX] whose past window best matches the most recent window. */
static int32_t find_pitch(const int16_t *h)
{
    const int16_t *recent = h + TR_PLC_HISTORY - CORRELATION_WINDOW;
    double best_score = -1.0;
    int32_t best = TR_PLC_PITCH_MAX;
    for (int32_t lag = TR_PLC_PITCH_MIN; lag <= TR_PLC_PITCH_MAX; lag++) {
        const int16_t *past = recent - lag;
        double cross = 0.0, energy = 1.0;
        for (int32_t i = 0; i < CORRELATION_WINDOW; i++) {
            cross += (double)recent[i] * past[i];
            energy += (double)past[i] * past[i];
        }
        /* cross / sqrt(energy) ranks lags like the normalised correlation does. */
        double score = cross > 0.0 ? cross * cross / energy : -1.0;
        if (score > best_score) {
            best_score = score;
            best = lag;
        }
    }
    return best;
}

int32_t tr_plc_pitch(const tr_plc_t *plc)
{
    return find_pitch(plc->history);
}

/* Build a cycle of `periods` pitch periods from the onset copy, with its tail pre-faded. */
static void build_cycle(tr_plc_t *plc, int32_t periods)
{
    int32_t len = periods * plc->pitch;
    int32_t start = ONSET - len;                          /* >= P/4: room for the lead */
    int32_t overlap = plc->pitch / 4;
    memcpy(plc->cycle, plc->onset + start, (size_t)len * sizeof(int16_t));
    /* Fade the cycle's end into what preceded its start, so cycle[len-1] -> cycle[0] is smooth. */
    const int16_t *before = plc->onset + start - overlap;
    for (int32_t i = 0; i < overlap; i++) {
        float w = (float)(i + 1) / (float)(overlap + 1);
        int32_t k = len - overlap + i;
        plc->cycle[k] = (int16_t)lrintf((1.0f - w) * plc->cycle[k] + w * before[i]);
    }
    plc->cycle_len = len;
}

static float fade_gain(int32_t erased)
{
    if (erased < FADE_START)
        return 1.0f;
    if (erased >= FADE_END)
        return 0.0f;
    return 1.0f - (float)(erased - FADE_START) / (float)(FADE_END - FADE_START);
}

/* Next synthetic sample: walk the cycle, widening it to 2P and 3P after 10 and 20 ms of loss. */
static float next_synthetic(tr_plc_t *plc, int fade)
{
    int32_t periods = plc->erased >= 2 * FADE_START ? 3 : plc->erased >= FADE_START ? 2 : 1;
    if (fade && periods * plc->pitch != plc->cycle_len) {
        int32_t old_len = plc->cycle_len;
        build_cycle(plc, periods);
        plc->cycle_pos += plc->cycle_len - old_len;       /* same sample, longer cycle */
    }
    float s = plc->cycle[plc->cycle_pos] * (fade ? fade_gain(plc->erased) : 1.0f);
    if (++plc->cycle_pos >= plc->cycle_len)
        plc->cycle_pos = 0;
    plc->erased++;
    return s;
}

static int16_t saturate(float v)
{
    if (v > 32767.0f)
        return 32767;
    if (v < -32768.0f)
        return -32768;
    return (int16_t)lrintf(v);
}

void tr_plc_conceal(tr_plc_t *plc, int16_t *out, int32_t n, int fade)
{
    if (plc->erased == 0) {
        memcpy(plc->onset, plc->history + TR_PLC_HISTORY - ONSET, sizeof plc->onset);
        plc->pitch = find_pitch(plc->history);
        build_cycle(plc, 1);
        plc->cycle_pos = 0;
    }
    for (int32_t i = 0; i < n; i++)
        out[i] = saturate(next_synthetic(plc, fade));
    plc->concealed_total += n;
    push_history(plc, out, n);
}

void tr_plc_good(tr_plc_t *plc, const int16_t *in, int16_t *out, int32_t n)
{
    int32_t merge = 0;
    if (plc->erased > 0) {
        /* Cross-fade from the continued synthetic signal into the real one. */
        merge = plc->pitch / 4 + 32 * ((plc->erased - 1) / FADE_START);
        if (merge > MERGE_MAX)
            merge = MERGE_MAX;
        if (merge > n)
            merge = n;
        for (int32_t i = 0; i < merge; i++) {
            float w = (float)(i + 1) / (float)(merge + 1);
            float synthetic = next_synthetic(plc, 1);
            out[i] = saturate((1.0f - w) * synthetic + w * in[i]);
        }
        plc->erased = 0;
    }
    if (out != in)
        memcpy(out + merge, in + merge, (size_t)(n - merge) * sizeof(int16_t));
    push_history(plc, out, n);
}
