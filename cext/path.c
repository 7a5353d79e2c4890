/*
 * The audio path of one line: see tr_path_t in tipring_dsp.h. All buffers live in the struct,
 * so the two per-frame calls allocate nothing.
 */
#include <math.h>
#include <string.h>

#include "tipring_dsp.h"

enum { FRAME = 160, REF_MASK = TR_PATH_REFERENCE - 1 };

void tr_path_init(tr_path_t *p, int law, int32_t echo_tail_ms, int32_t echo_delay_ms, int nlp,
                  int32_t jitter_min_ms, int32_t jitter_max_ms, int jitter_fixed)
{
    memset(p, 0, sizeof *p);
    p->law = law == TR_LAW_ALAW ? TR_LAW_ALAW : TR_LAW_ULAW;
    tr_ec_init(&p->ec, echo_tail_ms, nlp);
    tr_dtmf_rx_init(&p->dtmf);
    tr_jb_init(&p->jb, jitter_min_ms, jitter_max_ms, jitter_fixed);
    p->echo_cancel = echo_tail_ms > 0;
    int32_t delay = echo_delay_ms * 8;
    /* The reference must still be in the history when its echo comes back. */
    if (delay < 0)
        delay = 0;
    if (delay > TR_PATH_REFERENCE - 2 * FRAME)
        delay = TR_PATH_REFERENCE - 2 * FRAME;
    p->echo_delay = delay;
    p->tx_gain = p->rx_gain = 1.0f;
    p->noise_seed = 0x1234567u;
}

void tr_path_set_gains(tr_path_t *p, float tx_db, float rx_db)
{
    p->tx_gain = powf(10.0f, tx_db / 20.0f);
    p->rx_gain = powf(10.0f, rx_db / 20.0f);
}

void tr_path_comfort_noise(tr_path_t *p, int level_dbov)
{
    /* dBov: relative to a full-scale sine, whose RMS is 32768 / sqrt(2). */
    p->comfort_rms = level_dbov >= 127 || level_dbov < 0
                         ? 0.0f
                         : 23170.5f * powf(10.0f, -(float)level_dbov / 20.0f);
}

int tr_path_start_tone(tr_path_t *p, const tr_tone_plan_t *plan)
{
    if (tr_tone_start(&p->tone, plan) != 0)
        return -1;
    p->tone_active = 1;
    return 0;
}

int tr_path_start_fsk(tr_path_t *p)
{
    if (tr_fsk_tx_start(&p->fsk) != 0)
        return -1;
    p->fsk_active = 1;
    return 0;
}

static void apply_gain(int16_t *s, int32_t n, float gain)
{
    if (gain == 1.0f)
        return;
    for (int32_t i = 0; i < n; i++) {
        float v = (float)s[i] * gain;
        s[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : (int32_t)lrintf(v));
    }
}

int tr_capture(tr_path_t *p, const int16_t *in, uint8_t *payload, tr_dtmf_event_t *events,
               int max_events)
{
    int16_t near[FRAME];
    memcpy(near, in, sizeof near);
    if (p->echo_cancel) {
        int16_t far[FRAME];
        for (int32_t i = 0; i < FRAME; i++) {
            int64_t at = p->captured + i - p->echo_delay;  /* the played sample echoed now */
            far[i] = (at >= 0 && at < p->played) ? p->reference[at & REF_MASK] : 0;
        }
        tr_ec_process(&p->ec, far, near, FRAME);
    }
    p->captured += FRAME;
    /* Detect after cancelling, so the far end's own digits echoed by the hybrid are not
     * mistaken for the phone's. */
    int n = tr_dtmf_rx(&p->dtmf, near, FRAME, events, max_events);
    if (p->mute_tx) {
        memset(near, 0, sizeof near);
    } else {
        apply_gain(near, FRAME, p->tx_gain);
    }
    if (p->law == TR_LAW_ALAW)
        tr_alaw_encode(near, payload, FRAME);
    else
        tr_ulaw_encode(near, payload, FRAME);
    return n;
}

void tr_playout(tr_path_t *p, int64_t now_us, int16_t *out)
{
    tr_jb_get(&p->jb, now_us, out);           /* keeps its clock even while muted */
    if (p->jb.silent && p->jb.have_stream && p->comfort_rms > 0.0f) {
        /* The sender stopped for silence and said how loud its background was: play that
         * rather than dead air. Uniform noise of RMS r spans +-r*sqrt(3). */
        float spread = p->comfort_rms * 1.7320508f;
        for (int32_t i = 0; i < FRAME; i++) {
            p->noise_seed = p->noise_seed * 1664525u + 1013904223u;
            out[i] = (int16_t)lrintf(spread * ((float)(int32_t)p->noise_seed / 2147483648.0f));
        }
    }
    if (p->mute_rx)
        memset(out, 0, FRAME * sizeof(int16_t));
    else
        apply_gain(out, FRAME, p->rx_gain);
    if (p->fsk_active)
        p->fsk_active = tr_fsk_tx(&p->fsk, out, FRAME);
    if (p->tone_active)
        p->tone_active = tr_tone_generate(&p->tone, out, FRAME, 1);
    for (int32_t i = 0; i < FRAME; i++)
        p->reference[(p->played + i) & REF_MASK] = out[i];
    p->played += FRAME;
}
