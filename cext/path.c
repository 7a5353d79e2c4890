/*
 * The audio path of one line and its call legs: see tr_path_t in tipring_dsp.h. All buffers live
 * in the struct (a prompt's samples are the caller's), so the two per-frame calls allocate
 * nothing, and mixing two legs costs one more jitter buffer get and a few sums per frame.
 */
#include <math.h>
#include <string.h>

#include "tipring_dsp.h"

enum { FRAME = 160, REF_MASK = TR_PATH_REFERENCE - 1 };

/* Each leg's comfort noise has its own generator, so two far ends' noises are uncorrelated. */
static const uint32_t NOISE_SEEDS[TR_PATH_LEGS] = {0x1234567u, 0x89abcdeu};

void tr_path_init(tr_path_t *p, int law, int32_t echo_tail_ms, int32_t echo_delay_ms, int nlp,
                  int32_t jitter_min_ms, int32_t jitter_max_ms, int jitter_fixed)
{
    memset(p, 0, sizeof *p);
    tr_ec_init(&p->ec, echo_tail_ms, nlp);
    tr_dtmf_rx_init(&p->dtmf);
    p->jitter_min_ms = jitter_min_ms;
    p->jitter_max_ms = jitter_max_ms;
    p->jitter_fixed = jitter_fixed;
    for (int k = 0; k < TR_PATH_LEGS; k++) {
        p->leg[k].noise_seed = NOISE_SEEDS[k];
        tr_path_attach_leg(p, k, law);
    }
    for (int k = 1; k < TR_PATH_LEGS; k++)
        tr_path_detach_leg(p, k);
    p->echo_cancel = echo_tail_ms > 0;
    int32_t delay = echo_delay_ms * 8;
    /* The reference must still be in the history when its echo comes back. */
    if (delay < 0)
        delay = 0;
    if (delay > TR_PATH_REFERENCE - 2 * FRAME)
        delay = TR_PATH_REFERENCE - 2 * FRAME;
    p->echo_delay = delay;
    p->tx_gain = p->rx_gain = 1.0f;
}

void tr_path_set_gains(tr_path_t *p, float tx_db, float rx_db)
{
    p->tx_gain = powf(10.0f, tx_db / 20.0f);
    p->rx_gain = powf(10.0f, rx_db / 20.0f);
}

int tr_path_attach_leg(tr_path_t *p, int slot, int law)
{
    if (slot < 0 || slot >= TR_PATH_LEGS)
        return -1;
    tr_leg_t *leg = &p->leg[slot];
    tr_jb_init(&leg->jb, p->jitter_min_ms, p->jitter_max_ms, p->jitter_fixed);
    leg->law = law == TR_LAW_ALAW ? TR_LAW_ALAW : TR_LAW_ULAW;
    leg->send = leg->receive = 1;
    leg->comfort_rms = 0.0f;
    memset(leg->far, 0, sizeof leg->far);
    leg->live = 1;
    return 0;
}

void tr_path_detach_leg(tr_path_t *p, int slot)
{
    if (slot < 0 || slot >= TR_PATH_LEGS)
        return;
    p->leg[slot].live = 0;
    memset(p->leg[slot].far, 0, sizeof p->leg[slot].far);
}

void tr_path_comfort_noise(tr_path_t *p, int slot, int level_dbov)
{
    if (slot < 0 || slot >= TR_PATH_LEGS)
        return;
    /* dBov: relative to a full-scale sine, whose RMS is 32768 / sqrt(2). */
    p->leg[slot].comfort_rms = level_dbov >= 127 || level_dbov < 0
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

int tr_path_start_prompt(tr_path_t *p, const int16_t *pcm, int64_t n)
{
    if (pcm == NULL || n <= 0)
        return -1;
    p->prompt = pcm;
    p->prompt_len = n;
    p->prompt_pos = 0;
    p->prompt_active = 1;
    return 0;
}

void tr_path_stop_prompt(tr_path_t *p)
{
    p->prompt_active = 0;
    p->prompt = NULL;
}

static int16_t saturate(int32_t v)
{
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

static int16_t scale(int32_t v, float gain)
{
    float f = (float)v * gain;
    return (int16_t)(f > 32767.0f ? 32767 : f < -32768.0f ? -32768 : (int32_t)lrintf(f));
}

static void apply_gain(int16_t *s, int32_t n, float gain)
{
    if (gain == 1.0f)
        return;
    for (int32_t i = 0; i < n; i++)
        s[i] = scale(s[i], gain);
}

static void encode(int law, const int16_t *pcm, uint8_t *code)
{
    if (law == TR_LAW_ALAW)
        tr_alaw_encode(pcm, code, FRAME);
    else
        tr_ulaw_encode(pcm, code, FRAME);
}

/* What leg `self` is sent: the handset plus every other leg's far end, never its own. */
static void encode_leg(const tr_path_t *p, int self, const int16_t *near, uint8_t *code)
{
    int32_t sum[FRAME];
    int others = 0;
    for (int k = 0; k < TR_PATH_LEGS; k++) {
        const tr_leg_t *other = &p->leg[k];
        if (k == self || !other->live || !other->receive)
            continue;
        if (others++ == 0)
            for (int32_t i = 0; i < FRAME; i++)
                sum[i] = near[i];
        for (int32_t i = 0; i < FRAME; i++)
            sum[i] += other->far[i];
    }
    if (others == 0) {
        encode(p->leg[self].law, near, code);
        return;
    }
    int16_t mixed[FRAME];
    for (int32_t i = 0; i < FRAME; i++)
        mixed[i] = saturate(sum[i]);
    encode(p->leg[self].law, mixed, code);
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
    for (int k = 0; k < TR_PATH_LEGS; k++)
        if (p->leg[k].live && p->leg[k].send)
            encode_leg(p, k, near, payload + (size_t)k * FRAME);
    return n;
}

/* Each live leg's far end for this frame, summed into `sum` (zero when nothing is heard). */
static void receive_legs(tr_path_t *p, int64_t now_us, int32_t *sum)
{
    memset(sum, 0, FRAME * sizeof *sum);
    for (int k = 0; k < TR_PATH_LEGS; k++) {
        tr_leg_t *leg = &p->leg[k];
        if (!leg->live)
            continue;
        tr_jb_get(&leg->jb, now_us, leg->far);    /* keeps its clock even while muted */
        if (leg->jb.silent && leg->jb.have_stream && leg->comfort_rms > 0.0f) {
            /* The sender stopped for silence and said how loud its background was: play that
             * rather than dead air. Uniform noise of RMS r spans +-r*sqrt(3). */
            float spread = leg->comfort_rms * 1.7320508f;
            for (int32_t i = 0; i < FRAME; i++) {
                leg->noise_seed = leg->noise_seed * 1664525u + 1013904223u;
                leg->far[i] =
                    (int16_t)lrintf(spread * ((float)(int32_t)leg->noise_seed / 2147483648.0f));
            }
        }
        if (!leg->receive) {
            memset(leg->far, 0, sizeof leg->far);
            continue;
        }
        for (int32_t i = 0; i < FRAME; i++)
            sum[i] += leg->far[i];
    }
}

int tr_playout(tr_path_t *p, int64_t now_us, int16_t *out)
{
    int32_t sum[FRAME];
    receive_legs(p, now_us, sum);
    int32_t from = 0;          /* the first sample that is not the prompt's */
    int ended = 0;
    if (p->prompt_active) {
        int64_t left = p->prompt_len - p->prompt_pos;
        from = left < FRAME ? (int32_t)left : FRAME;
        memcpy(out, p->prompt + p->prompt_pos, (size_t)from * sizeof *out);
        p->prompt_pos += from;
        if (p->prompt_pos >= p->prompt_len) {
            tr_path_stop_prompt(p);
            ended = TR_PLAYOUT_PROMPT_ENDED;
        }
    }
    int32_t n = FRAME - from;
    if (n > 0) {
        int16_t *rest = out + from;
        if (p->mute_rx)
            memset(rest, 0, (size_t)n * sizeof *rest);
        else if (p->rx_gain == 1.0f)
            for (int32_t i = 0; i < n; i++)
                rest[i] = saturate(sum[from + i]);
        else
            for (int32_t i = 0; i < n; i++)
                rest[i] = scale(sum[from + i], p->rx_gain);
        if (p->fsk_active)
            p->fsk_active = tr_fsk_tx(&p->fsk, rest, (size_t)n);
        if (p->tone_active)
            p->tone_active = tr_tone_generate(&p->tone, rest, (size_t)n, 1);
    }
    for (int32_t i = 0; i < FRAME; i++)
        p->reference[(p->played + i) & REF_MASK] = out[i];
    p->played += FRAME;
    return ended;
}
