/*
 * DTMF and fax calling/answer tone detector.
 *
 * Why a Goertzel filter per half block rather than one per block: a 102-sample DFT cannot tell
 * a tone 3.5 % off (which Q.24 says to reject) from one 1.5 % off (which it says to accept) by
 * level alone at the low group, where 3.5 % is only a third of a bin. The phase advance of the
 * same bin between the block's two halves measures the tone's actual frequency to a few hertz, so
 * the deviation test is a plain comparison, and knowing the offset lets the level be corrected
 * for the bin's roll-off. Requiring equal energy in both halves rejects tones shorter than the
 * block, which together with two good blocks in a row sets the minimum digit duration (about
 * 23 ms; 40 ms is always accepted), and rejects much of speech, whose level moves within 6 ms.
 */
#include <math.h>
#include <string.h>

#include "tipring_dsp.h"

#define FS 8000.0
#define PI 3.14159265358979323846
#define N TR_DTMF_BLOCK
#define HALF (TR_DTMF_BLOCK / 2)
#define NFREQ 10
#define CNG 8
#define CED 9

static const double freqs[NFREQ] = {
    697.0, 770.0, 852.0, 941.0,        /* rows (low group) */
    1209.0, 1336.0, 1477.0, 1633.0,    /* columns (high group) */
    1100.0, 2100.0,                    /* fax CNG, CED */
};

static const char keypad[4][4] = {
    {'1', '2', '3', 'A'},
    {'4', '5', '6', 'B'},
    {'7', '8', '9', 'C'},
    {'*', '0', '#', 'D'},
};

#define DTMF_TOLERANCE 0.025      /* fraction of the nominal frequency */
#define FAX_TOLERANCE_HZ 25.0
#define DTMF_ENERGY_SHARE 0.80    /* both tones' share of the block energy */
#define FAX_ENERGY_SHARE 0.85
#define HALF_BALANCE 2.0          /* max energy ratio between the block's halves (3 dB) */
#define GROUP_DOMINANCE 4.0       /* chosen tone over the others in its group (6 dB) */
#define END_MISSES 3             /* blocks without the digit that end it (a 10 ms break does not) */
#define CNG_MIN_BLOCKS 32         /* 408 ms */
#define CED_MIN_BLOCKS 40         /* 510 ms */

/* Mean-square power of a 0 dBm0 sine: peak 32768 * 10^(-3.14/20). */
static double power_from_dbm0(double dbm0)
{
    double peak = 32768.0 * pow(10.0, (dbm0 - 3.14) / 20.0);
    return 0.5 * peak * peak;
}

static float dbm0_from_power(double p)
{
    return (float)(10.0 * log10(p / power_from_dbm0(0.0) + 1e-30));
}

void tr_dtmf_rx_init(tr_dtmf_rx_t *s)
{
    memset(s, 0, sizeof(*s));
    s->min_level_dbm0 = -42.0f;
    s->max_high_over_low = 6.0f;
    s->max_low_over_high = 10.0f;
    s->fax_tone = -1;
    for (int f = 0; f < NFREQ; f++) {
        double w = 2.0 * PI * freqs[f] / FS;
        s->coef[f] = 2.0 * cos(w);
        s->cosw[f] = cos(w);
        s->sinw[f] = sin(w);
        /* a half's Goertzel output y = e^{jw(HALF-1)} * its DFT from the half's first sample, and
           the second half starts HALF samples into the block */
        for (int h = 0; h < 2; h++) {
            double back = -w * (HALF - 1 + h * HALF);
            s->rot_re[h * NFREQ + f] = cos(back);
            s->rot_im[h * NFREQ + f] = sin(back);
        }
    }
}

typedef struct {
    double power;       /* level-corrected mean-square power of the tone */
    double raw;         /* power at the nominal bin */
    double offset_hz;   /* measured frequency minus nominal */
} bin_t;

/*
 * Analyse one block: every frequency's power and offset, and the block's mean-square energy.
 * *steady says both halves hold about the same energy; it is measured on the waveform rather than
 * per bin because a 51-sample bin still catches enough of the other DTMF tone to swing its level
 * between the halves by 3 dB on a perfectly steady pair.
 */
static double analyse(const tr_dtmf_rx_t *s, double floor_power, bin_t bins[NFREQ], int *steady)
{
    double half[2] = {0.0, 0.0};
    for (int k = 0; k < N; k++)
        half[k >= HALF] += (double)s->block[k] * s->block[k];
    *steady = half[0] <= HALF_BALANCE * half[1] && half[1] <= HALF_BALANCE * half[0];
    double energy = (half[0] + half[1]) / N;

    double hr[2][NFREQ], hi[2][NFREQ];
    for (int h = 0; h < 2; h++) {
        /* a Goertzel filter per frequency over one half; the frequencies run side by side so the
           compiler can keep the ten recursions in flight together */
        const int16_t *x = s->block + h * HALF;
        double s1[NFREQ] = {0.0}, s2[NFREQ] = {0.0};
        for (int k = 0; k < HALF; k++) {
            for (int f = 0; f < NFREQ; f++) {
                double s0 = x[k] + s->coef[f] * s1[f] - s2[f];
                s2[f] = s1[f];
                s1[f] = s0;
            }
        }
        /* rotate so that both halves share the block's phase origin */
        for (int f = 0; f < NFREQ; f++) {
            double yr = s1[f] - s->cosw[f] * s2[f], yi = s->sinw[f] * s2[f];
            double rr = s->rot_re[h * NFREQ + f], ri = s->rot_im[h * NFREQ + f];
            hr[h][f] = yr * rr - yi * ri;
            hi[h][f] = yr * ri + yi * rr;
        }
    }
    for (int f = 0; f < NFREQ; f++) {
        double xr = hr[0][f] + hr[1][f], xi = hi[0][f] + hi[1][f];
        double raw = 2.0 * (xr * xr + xi * xi) / ((double)N * N);
        bins[f].raw = raw;
        if (raw * 4.0 < floor_power) {       /* too weak even after the largest correction */
            bins[f].power = raw;
            bins[f].offset_hz = FS;
            continue;
        }
        /* phase of half 2 relative to half 1 = 2 pi df HALF / FS */
        double cr = hr[1][f] * hr[0][f] + hi[1][f] * hi[0][f];
        double ci = hi[1][f] * hr[0][f] - hr[1][f] * hi[0][f];
        double df = atan2(ci, cr) * FS / (2.0 * PI * HALF);
        /* the roll-off of an N-point DFT at df from the bin centre (Dirichlet kernel) */
        double a = PI * df / FS;
        double gain = fabs(a) < 1e-9 ? 1.0 : sin(a * N) / (N * sin(a));
        if (gain < 0.5)
            gain = 0.5;
        bins[f].power = raw / (gain * gain);
        bins[f].offset_hz = df;
    }
    return energy;
}

static int strongest(const bin_t *bins, int first)
{
    int best = first;
    for (int f = first + 1; f < first + 4; f++)
        if (bins[f].raw > bins[best].raw)
            best = f;
    return best;
}

static int dominates(const bin_t *bins, int first, int best)
{
    for (int f = first; f < first + 4; f++)
        if (f != best && bins[f].raw * GROUP_DOMINANCE > bins[best].raw)
            return 0;
    return 1;
}

/* The digit this block holds (ASCII), or 0. */
static int classify_dtmf(const tr_dtmf_rx_t *s, const bin_t *bins, double energy,
                         double floor_power)
{
    int r = strongest(bins, 0), c = strongest(bins, 4);
    const bin_t *lo = &bins[r], *hi = &bins[c];
    if (lo->power < floor_power || hi->power < floor_power)
        return 0;
    if (fabs(lo->offset_hz) > DTMF_TOLERANCE * freqs[r] ||
        fabs(hi->offset_hz) > DTMF_TOLERANCE * freqs[c])
        return 0;
    double twist = 10.0 * log10(hi->power / lo->power);
    if (twist > s->max_high_over_low || -twist > s->max_low_over_high)
        return 0;
    if (!dominates(bins, 0, r) || !dominates(bins, 4, c))
        return 0;
    if (lo->power + hi->power < DTMF_ENERGY_SHARE * energy)
        return 0;
    return keypad[r][c - 4];
}

/* CNG or CED index if this block holds a lone fax tone, else -1. */
static int classify_fax(const bin_t *bins, double energy, double floor_power)
{
    for (int f = CNG; f <= CED; f++) {
        const bin_t *b = &bins[f];
        if (b->power >= floor_power &&
            fabs(b->offset_hz) <= FAX_TOLERANCE_HZ && b->power >= FAX_ENERGY_SHARE * energy)
            return f;
    }
    return -1;
}

static void emit(tr_dtmf_event_t *ev, int max, int *count, int kind, int code, int64_t at,
                 int32_t duration, float low, float high)
{
    if (*count >= max)
        return;
    tr_dtmf_event_t *e = &ev[(*count)++];
    e->kind = kind;
    e->code = code;
    e->at = at;
    e->duration = duration;
    e->low_dbm0 = low;
    e->high_dbm0 = high;
}

static void block_done(tr_dtmf_rx_t *s, int64_t start, tr_dtmf_event_t *ev, int max, int *count)
{
    bin_t bins[NFREQ];
    int steady;
    double floor_power = power_from_dbm0(s->min_level_dbm0);
    double energy = analyse(s, floor_power, bins, &steady);
    int code = steady ? classify_dtmf(s, bins, energy, floor_power) : 0;

    if (s->digit) {
        if (code == s->digit) {
            s->misses = 0;
        } else if (++s->misses == 1) {
            s->miss_start = start;
        } else if (s->misses == END_MISSES) {
            emit(ev, max, count, TR_EV_DIGIT_END, s->digit, s->miss_start,
                 (int32_t)(s->miss_start - s->digit_start), 0.0f, 0.0f);
            s->digit = 0;
            s->misses = 0;
        }
    }
    if (!s->digit && code && code == s->prev_code) {
        s->digit = code;
        s->digit_start = s->prev_start;
        s->misses = 0;
        emit(ev, max, count, TR_EV_DIGIT_START, code, s->prev_start, 0, s->prev_low, s->prev_high);
    }
    s->prev_code = code;
    s->prev_start = start;
    if (code) {
        int r = strongest(bins, 0), c = strongest(bins, 4);
        s->prev_low = dbm0_from_power(bins[r].power);
        s->prev_high = dbm0_from_power(bins[c].power);
    }

    int fax = code || !steady ? -1 : classify_fax(bins, energy, floor_power);
    if (fax >= 0 && fax == s->fax_tone) {
        s->fax_blocks++;
        s->fax_misses = 0;
    } else if (s->fax_tone >= 0 && s->fax_misses < 1) {
        s->fax_misses++;             /* bridge one bad block: a CED phase reversal, a click */
        s->fax_blocks++;
    } else {
        s->fax_tone = fax;
        s->fax_blocks = fax >= 0;
        s->fax_misses = 0;
        s->fax_reported = 0;
        s->fax_start = start;
    }
    if (s->fax_tone >= 0 && !s->fax_reported &&
        s->fax_blocks >= (s->fax_tone == CNG ? CNG_MIN_BLOCKS : CED_MIN_BLOCKS)) {
        s->fax_reported = 1;
        emit(ev, max, count, s->fax_tone == CNG ? TR_EV_FAX_CNG : TR_EV_FAX_CED, 0, s->fax_start,
             0, dbm0_from_power(bins[s->fax_tone].power), 0.0f);
    }
}

int tr_dtmf_rx(tr_dtmf_rx_t *s, const int16_t *pcm, size_t n, tr_dtmf_event_t *events,
               int max_events)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        s->block[s->fill++] = pcm[i];
        s->samples++;
        if (s->fill == N) {
            s->fill = 0;
            block_done(s, s->samples - N, events, max_events, &count);
        }
    }
    return count;
}
