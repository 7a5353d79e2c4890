/*
 * Line echo canceller; the behaviour is described with tr_ec_t in tipring_dsp.h. Everything is
 * per sample except the two-path decision, the level trackers and the ANSam detector, which run
 * on blocks (10 ms and 20 ms).
 */
#include <math.h>
#include <string.h>

#include "tipring_dsp.h"

#define PI_F 3.14159265f

enum {
    CHUNK = 64,                  /* Geigel maxima are kept per 64 samples */
    BLOCK = 80,                  /* two-path comparison and level tracking every 10 ms */
    TONE_BLOCK = 160,            /* 2100 Hz analysis: 20 ms, exactly 42 cycles */
    HANGOVER = 240,              /* 30 ms of assumed double talk after the detector fires */
    QUIET_RELEASE = 2000,        /* 250 ms of quiet ends a modem/fax bypass */
};

static const float MU = 0.5f;                  /* normalised step size */
static const float FAR_ACTIVE = 300.0f * 300.0f;  /* mean square: about -40 dBm0 */
static const float ANSAM_MIN = 1000.0f * 1000.0f; /* about -27 dBm0 */

void tr_ec_init(tr_ec_t *ec, int32_t tail_ms, int nlp)
{
    memset(ec, 0, sizeof *ec);
    for (int32_t k = 0; k < TR_EC_MAX_TAPS; k++)
        ec->gain[k] = 1.0f;
    int32_t taps = tail_ms * 8;
    if (taps < CHUNK)
        taps = CHUNK;
    if (taps > TR_EC_MAX_TAPS)
        taps = TR_EC_MAX_TAPS;
    ec->taps = taps;
    ec->nlp_enabled = nlp;
    ec->near_noise = 10.0f * 10.0f;
    for (int32_t i = 0; i < 80; i++) {
        ec->tone_cos[i] = cosf(2.0f * PI_F * 2100.0f / 8000.0f * (float)i);
        ec->tone_sin[i] = sinf(2.0f * PI_F * 2100.0f / 8000.0f * (float)i);
    }
    ec->noise_seed = 0x2545F491u;
}

/* The tail is a multiple of 64 taps; eight independent sums let the compiler use SIMD. The
 * loops walk pointers rather than int indexes: Python builds extensions with -fwrapv, under
 * which wrapping int index arithmetic keeps GCC from vectorising. */
static float dot(const float *restrict w, const float *restrict x, int32_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (const float *end = w + n; w < end; w += 8, x += 8) {
        s0 += w[0] * x[0];
        s1 += w[1] * x[1];
        s2 += w[2] * x[2];
        s3 += w[3] * x[3];
        s4 += w[4] * x[4];
        s5 += w[5] * x[5];
        s6 += w[6] * x[6];
        s7 += w[7] * x[7];
    }
    return ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7));
}

static void adapt(float *restrict w, const float *restrict gain, const float *restrict x,
                  float step, int32_t n)
{
    for (size_t k = 0; k < (size_t)n; k++)
        w[k] += step * gain[k] * x[k];
}

static float geigel_max(const tr_ec_t *ec)
{
    float m = 0.0f;
    int32_t chunks = ec->taps / CHUNK + 1;
    for (int32_t i = 0; i < chunks; i++)
        if (ec->chunk_max[i] > m)
            m = ec->chunk_max[i];
    return m;
}

/* Uniform noise in [-1, 1) from a 32-bit LCG: comfort noise needs no better. */
static float noise(tr_ec_t *ec)
{
    ec->noise_seed = ec->noise_seed * 1664525u + 1013904223u;
    return (float)(int32_t)ec->noise_seed / 2147483648.0f;
}

static void end_block(tr_ec_t *ec)
{
    /* Two-path: adopt the background filter when it cancels clearly better than the foreground
     * and actually removes something; reset it from the foreground when it diverges. */
    if (ec->far_level > FAR_ACTIVE) {
        /* Once converged, a block counts only if the capture holds no more than the echo the
         * foreground predicts: an adaptive filter chasing a near talker also looks "better". */
        int single_talk = !ec->converged ||
                          ec->block_d < 1.3f * ec->block_y + 4.0f * (float)BLOCK * ec->near_noise;
        float cancels = ec->converged ? 0.1f : 0.25f;  /* 10 dB once converged, else 6 dB */
        if (ec->hangover == 0 && single_talk && ec->block_bg < 0.89f * ec->block_fg &&
            ec->block_bg < cancels * ec->block_d)
            ec->better_blocks++;
        else
            ec->better_blocks = 0;
        if (ec->better_blocks >= 3) {
            memcpy(ec->fg, ec->bg, (size_t)ec->taps * sizeof(float));
            ec->copies++;
            ec->better_blocks = 0;
        } else if (ec->block_bg > 4.0f * ec->block_d && ec->block_d > 0.0f) {
            memcpy(ec->bg, ec->fg, (size_t)ec->taps * sizeof(float));
            ec->resets++;
        }
        if (ec->block_fg < 0.001f * ec->block_d)
            ec->converged_blocks++;
        /* Converged once the foreground takes 10 dB off; unconverged again (the echo path
         * changed, e.g. another phone picked up) after a second of far-end speech without 3 dB. */
        if (ec->block_fg < 0.1f * ec->block_d) {
            ec->converged = 1;
            ec->unconverged_blocks = 0;
        } else if (ec->block_fg > 0.5f * ec->block_d && ec->hangover == 0 &&
                   ++ec->unconverged_blocks >= 100) {
            ec->converged = 0;
        }
    }
    /* IPNLMS gains (alpha = -0.5), scaled to a mean of 1 so the step size keeps its meaning. */
    float norm1 = 0.0f;
    for (int32_t k = 0; k < ec->taps; k++)
        norm1 += fabsf(ec->bg[k]);
    for (int32_t k = 0; k < ec->taps; k++)
        ec->gain[k] = 0.75f + 0.25f * (float)ec->taps * fabsf(ec->bg[k]) / (norm1 + 1e-6f);
    /* Near-end background: a slow minimum of the residual level while the far end is silent. */
    float level = ec->block_fg / BLOCK;
    if (ec->far_level < FAR_ACTIVE) {
        if (level < ec->near_noise)
            ec->near_noise = level;
        else
            ec->near_noise *= 1.01f;
    }
    ec->block_d = ec->block_fg = ec->block_bg = ec->block_y = 0.0f;
    ec->block_n = 0;
}

static void tone_block(tr_ec_t *ec)
{
    /* ANSam: 2100 Hz carrying most of the energy, with a phase reversal. The phase step between
     * blocks is constant for a steady tone even slightly off 2100 Hz, so a reversal shows as a
     * change of about pi in that step. */
    float power = ec->tone_re * ec->tone_re + ec->tone_im * ec->tone_im;
    float ratio = ec->total_energy > 0.0f ? power / (0.5f * TONE_BLOCK * ec->total_energy) : 0.0f;
    int tone = ratio > 0.5f && ec->total_energy / TONE_BLOCK > ANSAM_MIN;
    if (tone) {
        float phase = atan2f(ec->tone_im, ec->tone_re);
        if (ec->phase_valid) {
            float step = phase - ec->last_phase;
            if (ec->phase_valid > 1) {
                float change = step - ec->last_step;
                while (change > PI_F)
                    change -= 2.0f * PI_F;
                while (change < -PI_F)
                    change += 2.0f * PI_F;
                if (fabsf(change) > 2.6f)      /* about 150 degrees */
                    ec->reversals++;
            }
            ec->last_step = step;
        }
        ec->last_phase = phase;
        ec->phase_valid++;
        ec->tone_blocks++;
        if (ec->tone_blocks >= 5 && ec->reversals > 0)
            ec->bypass = 1;
    } else {
        ec->phase_valid = 0;
        ec->tone_blocks = 0;
        ec->reversals = 0;
    }
    ec->tone_re = ec->tone_im = ec->total_energy = 0.0f;
    ec->tone_n = 0;
}

void tr_ec_process(tr_ec_t *ec, const int16_t *far, int16_t *near, int32_t n)
{
    const int32_t taps = ec->taps;
    for (int32_t i = 0; i < n; i++) {
        float xn = far[i], d = near[i];

        /* ANSam detector on both directions (the tone may come from either modem). */
        float both = xn + d;
        ec->tone_re += both * ec->tone_cos[ec->tone_n % 80];
        ec->tone_im -= both * ec->tone_sin[ec->tone_n % 80];
        ec->total_energy += both * both;
        if (++ec->tone_n == TONE_BLOCK)
            tone_block(ec);
        if (ec->bypass) {
            ec->quiet = (xn * xn + d * d < FAR_ACTIVE) ? ec->quiet + 1 : 0;
            if (ec->quiet >= QUIET_RELEASE) {
                ec->bypass = 0;
                ec->quiet = 0;
            }
            continue;                            /* near[i] passes untouched */
        }

        /* Far-end history: newest at pos, duplicated so x[pos .. pos+taps) is contiguous. */
        ec->pos = ec->pos == 0 ? taps - 1 : ec->pos - 1;
        float leaving = ec->x[ec->pos];
        ec->x[ec->pos] = ec->x[ec->pos + taps] = xn;
        ec->x_power += xn * xn - leaving * leaving;
        if (ec->x_power < 0.0f)
            ec->x_power = 0.0f;
        const float *x = ec->x + ec->pos;

        float ax = fabsf(xn);
        if (ax > ec->chunk_max[ec->chunk])
            ec->chunk_max[ec->chunk] = ax;
        if (++ec->chunk_n == CHUNK) {
            ec->chunk_n = 0;
            ec->chunk = (ec->chunk + 1) % (taps / CHUNK + 1);
            ec->chunk_max[ec->chunk] = 0.0f;
        }

        /* With no far-end signal in the tail there is no echo to model: skip the filters. */
        int idle = ec->x_power < 1.0f;
        float y_fg = idle ? 0.0f : dot(ec->fg, x, taps);
        float e_fg = d - y_fg;
        float e_bg = idle ? d : d - dot(ec->bg, x, taps);
        ec->d_short += (d * d - ec->d_short) * (1.0f / 40.0f);
        ec->y_short += (y_fg * y_fg - ec->y_short) * (1.0f / 40.0f);

        /* Geigel double talk: near-end as loud as the recent far-end peak. G.168 allows an echo
         * return loss down to 6 dB, so the classic half-peak threshold fires on echo alone; the
         * two-path structure, not this detector, is what keeps double talk out of the output. */
        int double_talk = fabsf(d) > geigel_max(ec);
        if (ec->converged && ec->d_short > 4.0f * ec->y_short + 16.0f * ec->near_noise)
            double_talk = 1;             /* the capture is 6 dB above the echo it should hold */
        if (double_talk) {
            if (ec->hangover == 0) {
                /* Onset: the last steps before detection already adapted on the near talker. */
                memcpy(ec->bg, ec->fg, (size_t)taps * sizeof(float));
                ec->better_blocks = 0;
            }
            ec->hangover = HANGOVER;
        }
        else if (ec->hangover > 0)
            ec->hangover--;
        /* Adapt only while the far end is well above the line's own noise: steps normalised by a
         * small far-end power would otherwise be driven by that noise. */
        float far_mean = ec->x_power / (float)taps;
        if (ec->hangover == 0 && far_mean > FAR_ACTIVE / 16.0f && far_mean > 300.0f * ec->near_noise) {
            adapt(ec->bg, ec->gain, x, MU * e_bg / (ec->x_power + (float)taps * 100.0f), taps);
        }

        ec->block_d += d * d;
        ec->block_fg += e_fg * e_fg;
        ec->block_bg += e_bg * e_bg;
        ec->block_y += y_fg * y_fg;
        ec->far_level += (xn * xn - ec->far_level) * (1.0f / 80.0f);
        ec->residual_level += (e_fg * e_fg - ec->residual_level) * (1.0f / 80.0f);
        if (++ec->block_n == BLOCK)
            end_block(ec);

        /* NLP: far end alone and the residual 15 dB below it -> comfort noise. */
        int suppress = ec->nlp_enabled && ec->hangover == 0 && ec->far_level > FAR_ACTIVE &&
                       ec->residual_level < 0.03f * ec->far_level;
        ec->cng_gain += ((suppress ? 1.0f : 0.0f) - ec->cng_gain) * (suppress ? 0.02f : 0.2f);
        float out = e_fg;
        if (ec->cng_gain > 0.001f) {
            float comfort = noise(ec) * sqrtf(3.0f * ec->near_noise);  /* uniform: var = a^2/3 */
            out = (1.0f - ec->cng_gain) * e_fg + ec->cng_gain * comfort;
            ec->nlp_samples++;
        }
        if (out > 32767.0f)
            out = 32767.0f;
        if (out < -32768.0f)
            out = -32768.0f;
        near[i] = (int16_t)lrintf(out);
    }
}
