/*
 * Adaptive jitter buffer: the algorithm is described with tr_jbuf_t in tipring_dsp.h (98th
 * percentile as a cap on a late-loss/delay cost, the two-peak rule with a stall's burst as one
 * peak, the cover on the frame grid, silence realignment and catch-up after a stall, pitch-period
 * shrink/stretch, lost-vs-late rule). This file keeps to that order: stream bookkeeping, put (arrival side), target update,
 * get (playout).
 */
#include <stdlib.h>
#include <string.h>

#include "tipring_dsp.h"

enum {
    RING_MASK = TR_JB_RING - 1,
    FRAME = 160,
    RESYNC = 16000,              /* 2 s off the timeline: a new timeline, not jitter */
    SAFETY = 20,                 /* 2.5 ms on top of the percentile */
    SHRINK_STEP = 16,            /* 2 ms per 200 ms update: 10 ms/s */
    UPDATE_FRAMES = 10,          /* re-evaluate the target every 200 ms */
    ADJUST_SPEECH = 80,          /* |err| that justifies a pitch-period edit in speech: 10 ms */
    ADJUST_QUIET = 40,           /* ... and in a quiet frame: 5 ms */
    QUIET_POWER = 130 * 130,     /* mean square below about -45 dBm0 */
    PEAK_SPAN = 100,             /* packets within which a second peak confirms a spike */
    PEAK_SURPRISE = 2,           /* ... and how much closer than the window predicts they must be */
    BURST_GAP = 40,              /* arrivals closer than 5 ms are one release of a queue */
    LATE_COST = 80,              /* delay one percentage point of late loss is worth: 10 ms */
    CATCH_UP = 160,              /* overdue audio a talkspurt may resume with after a stall */
    COVER_LATE_COST = 100,       /* the same on the frame grid: 12.5 ms (concealment is heard) */
    STAY = 80,                   /* a grid point must be 10 ms cheaper to move playout to it */
    EDIT_SLACK = 16,             /* timestamp noise an edit or a hold may ignore: 2 ms */
    ALIGN_SLACK = 40,            /* a quiet stretch may be 5 ms off what is wanted to realign */
    PATIENCE = 100,              /* frames of speech (2 s) a frame above the cover before a drop */
    STARTUP = 50,                /* packets before the statistics are trusted to call a loss */
};

static void forget_stream(tr_jbuf_t *jb)
{
    memset(jb->valid, 0, sizeof jb->valid);
    jb->have_stream = 0;
    jb->silent = 1;
    jb->window_len = 0;
    jb->window_head = 0;
    jb->unconfirmed_lost = 0;
    jb->since_peak = PEAK_SPAN + 1;
    jb->peak_span = PEAK_SPAN;
    tr_plc_init(&jb->plc);
}

void tr_jb_init(tr_jbuf_t *jb, int32_t min_delay_ms, int32_t max_delay_ms, int fixed)
{
    memset(jb, 0, sizeof *jb);
    if (min_delay_ms < 0)
        min_delay_ms = 0;
    if (max_delay_ms < min_delay_ms)
        max_delay_ms = min_delay_ms;
    if (max_delay_ms > 500)
        max_delay_ms = 500;      /* the ring must hold max delay plus a burst */
    jb->min_delay = min_delay_ms * 8;
    jb->max_delay = max_delay_ms * 8;
    jb->fixed = fixed;
    jb->target = jb->min_delay;
    jb->cover = jb->min_delay;
    forget_stream(jb);
}

/* Extend a 32-bit RTP timestamp to the timeline, choosing the wrap nearest the last packet. */
static int64_t extend(const tr_jbuf_t *jb, uint32_t ts)
{
    return jb->last_ext + (int32_t)(ts - (uint32_t)jb->last_ext);
}

static void start_stream(tr_jbuf_t *jb, uint32_t ssrc, uint32_t ts, int64_t arrival)
{
    int64_t ext = (int64_t)ts + ((int64_t)1 << 32);   /* keeps early reordered packets positive */
    jb->have_stream = 1;
    jb->ssrc = ssrc;
    jb->last_ext = ext;
    jb->play_ts = ext;
    jb->newest_end = ext;
    jb->anchor = arrival - ext;                       /* the first relative delay */
    jb->base = jb->anchor;
    jb->frames = 0;
}

static void remember_delay(tr_jbuf_t *jb, int64_t r)
{
    int64_t offset = r - jb->anchor;
    if (offset > INT32_MAX / 2 || offset < INT32_MIN / 2)
        offset = offset > 0 ? INT32_MAX / 2 : INT32_MIN / 2;
    jb->window[jb->window_head] = (int32_t)offset;
    jb->window_head = (jb->window_head + 1) % TR_JB_WINDOW;
    if (jb->window_len < TR_JB_WINDOW)
        jb->window_len++;
}

/* Grow fast: a packet that missed its slot is a peak; a second peak within PEAK_SPAN packets
 * raises the target at once to cover the smaller of the two (one outlier alone does not). The
 * packets a stalled queue releases together (arriving within BURST_GAP of each other) are one
 * peak, their highest: a stall is one event, not a confirmation of itself. */
static void note_peak(tr_jbuf_t *jb, int64_t offset, int64_t arrival)
{
    jb->since_peak++;
    if (jb->fixed || offset + SAFETY <= jb->target)
        return;
    if (offset > INT32_MAX / 2)
        offset = INT32_MAX / 2;
    if (jb->since_peak <= PEAK_SPAN && arrival - jb->peak_arrival < BURST_GAP) {
        if (offset > jb->last_peak)
            jb->last_peak = (int32_t)offset;
    } else {
        int64_t covered = offset < jb->last_peak ? offset : jb->last_peak;
        if (jb->since_peak <= jb->peak_span && covered + SAFETY > jb->target) {
            jb->target = covered + SAFETY > jb->max_delay ? jb->max_delay
                                                          : (int32_t)(covered + SAFETY);
            if (jb->target > jb->cover)
                jb->cover = jb->target;  /* at once; back on the grid at the next update */
        }
        jb->last_peak = (int32_t)offset;
    }
    jb->peak_arrival = arrival;
    jb->since_peak = 0;
}

static void decode(int law, const uint8_t *payload, int16_t *pcm, int32_t len)
{
    if (law == TR_LAW_ALAW)
        tr_alaw_decode(payload, pcm, (size_t)len);
    else
        tr_ulaw_decode(payload, pcm, (size_t)len);
}

int tr_jb_put(tr_jbuf_t *jb, uint32_t ssrc, uint16_t seq, uint32_t timestamp, int marker, int law,
              const uint8_t *payload, int32_t len, int64_t arrival_us)
{
    /* Timing comes from timestamps; sequence numbers serve RTCP loss accounting in the RTP layer
     * and are taken so the interface carries the whole RTP header. Talkspurt starts (marker) need
     * no re-alignment here, as they fall in silence where play_ts already re-aligns. */
    (void)seq;
    int result = TR_JB_ACCEPTED;
    if (len <= 0 || len > TR_JB_MAX_PAYLOAD || (law != TR_LAW_ULAW && law != TR_LAW_ALAW)) {
        jb->stats.discarded++;
        return TR_JB_DISCARDED;
    }
    int64_t arrival = arrival_us * 8 / 1000;
    if (jb->have_stream && ssrc != jb->ssrc) {
        forget_stream(jb);
        jb->stats.resets++;
        result = TR_JB_RESET;
    }
    if (jb->have_stream) {
        int64_t ext = extend(jb, timestamp);
        int64_t off = arrival - ext - jb->base;
        if (off > RESYNC || off < -RESYNC) {
            forget_stream(jb);
            jb->stats.resets++;
            result = TR_JB_RESET;
        }
    }
    if (!jb->have_stream)
        start_stream(jb, ssrc, timestamp, arrival);

    int64_t ext = extend(jb, timestamp);
    jb->stats.received++;
    remember_delay(jb, arrival - ext);
    note_peak(jb, arrival - ext - jb->base, arrival);
    if (ext > jb->last_ext)
        jb->last_ext = ext;

    int64_t end = ext + len;
    if (marker && ext >= jb->play_ts && jb->unconfirmed_lost > 0) {
        /* A new talkspurt after the concealment: the sender had stopped, nothing was lost. */
        jb->stats.lost_samples -= (uint32_t)jb->unconfirmed_lost;
        jb->unconfirmed_lost = 0;
    }
    if (end <= jb->play_ts) {
        jb->stats.late++;
        return TR_JB_LATE;
    }
    if (end - jb->play_ts > TR_JB_RING) {
        if (!jb->silent) {
            jb->stats.overflow++;
            jb->stats.discarded++;
            return TR_JB_DISCARDED;
        }
        /* Holding in silence through a stall or an outage, with this packet a ring or more
         * ahead: whatever is stored is a ring's worth overdue and would only be skipped, and
         * holding on would turn every packet from now on away. Start again from this one. */
        for (int64_t t = jb->play_ts; t < jb->newest_end; t++)
            jb->valid[t & RING_MASK] = 0;
        jb->play_ts = ext;
    }
    /* Only samples not yet played are stored; a packet adding none of them is a duplicate. */
    int32_t skip = ext < jb->play_ts ? (int32_t)(jb->play_ts - ext) : 0;
    int32_t fresh = 0;
    for (int32_t i = skip; i < len; i++)
        fresh += !jb->valid[(ext + i) & RING_MASK];
    if (fresh == 0) {
        jb->stats.duplicate++;
        return TR_JB_DUPLICATE;
    }
    int16_t pcm[TR_JB_MAX_PAYLOAD];
    decode(law, payload, pcm, len);
    for (int32_t i = skip; i < len; i++) {
        int64_t at = (ext + i) & RING_MASK;
        jb->pcm[at] = pcm[i];
        jb->valid[at] = 1;
    }
    if (end > jb->newest_end)
        jb->newest_end = end;
    jb->packet_len = len;
    jb->phase_ref = ext;
    return result;
}

static int compare_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The delay above base, of those the window holds up to its 98th percentile, that minimises the
 * share of the window's packets it would have made late (in percent) times LATE_COST plus
 * the delay itself: where the tail is thin (a few stalls, heavy-tailed), covering it costs more
 * delay than the loss it saves, and the 98th percentile alone would hold that delay. */
static int32_t cheapest_delay(const int32_t *sorted, int32_t n, int32_t top)
{
    int64_t best_cost = INT64_MAX;
    int32_t best = sorted[top];
    for (int32_t i = top; i >= 0; i--) {
        if (i < top && sorted[i] == sorted[i + 1])
            continue;
        int64_t cost = (int64_t)(n - 1 - i) * 100 * LATE_COST / n + (sorted[i] - sorted[0]);
        if (cost < best_cost) {
            best_cost = cost;
            best = sorted[i];
        }
    }
    return best;
}

/* Packets of the sorted window whose delay above its minimum exceeds d, in percent. */
static int64_t percent_over(const int32_t *sorted, int32_t n, int64_t d)
{
    int32_t lo = 0, hi = n;             /* first index with sorted[i] - sorted[0] > d */
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (sorted[mid] - sorted[0] > d)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (int64_t)(n - lo) * 100;     /* divided by n by the caller, to keep precision */
}

/* The cover: the playout delay actually aimed at. A 20 ms frame plays whole packets best: a frame
 * starting mid-packet needs the next packet as early as an aligned one would, yet plays each
 * sample later, so every delay off the grid of packet starts (as seen from our ticks) wastes up
 * to a frame. The cover is therefore the grid point just below or just above the target, by cost:
 * the delay plus COVER_LATE_COST per % of the window's packets that would miss their slot, less
 * STAY for the point playout is on (each move is a time-scale edit). Not below min, not above
 * max; fixed mode takes the point at or above the configured delay. Packets that do not divide a
 * frame (30, 60 ms) have no such grid: the cover is the target. */
static void choose_cover(tr_jbuf_t *jb, const int32_t *sorted, int32_t n, int64_t now)
{
    int32_t step = jb->packet_len;
    int64_t current = jb->cover;
    jb->cover = jb->target;
    if (step <= 0 || FRAME % step != 0)
        return;                          /* frames and packets do not line up: no grid */
    int64_t phase = (now - jb->base - jb->phase_ref) % step;
    if (phase < 0)
        phase += step;
    int64_t below = jb->target - ((jb->target - phase) % step + step) % step;
    if (below == jb->target)
        return;
    int64_t above = below + step;
    /* The point playout is on stays a candidate up to a step above `above`: the two cost
     * functions (the target's, on raw delays, and this one, on the grid) need not agree, and
     * where they differ by a step the target's slow descent used to push the cover down and its
     * next rise pull it up again, an edit each way (most of the edits on Gaussian jitter). */
    int64_t stay = -1;                   /* -1: no third candidate */
    if (labs((long)(current - above - step)) < step / 4 && current <= jb->max_delay)
        stay = current;
    int64_t pick;
    if (above > jb->max_delay)
        pick = below;
    else if (below < jb->min_delay || jb->fixed)
        pick = above;
    else {
        int64_t reach = FRAME - step;    /* the frame's last packet is needed this much sooner */
        int64_t best = INT64_MAX;
        pick = below;
        for (int k = 0; k < 3; k++) {
            int64_t d = k == 0 ? below : k == 1 ? above : stay;
            if (d < 0)
                continue;
            int64_t cost = d * n + percent_over(sorted, n, d - reach) * COVER_LATE_COST;
            if (labs((long)(d - current)) < step / 4)
                cost -= (int64_t)STAY * n;   /* each move is a time-scale edit: be sure */
            if (cost < best) {
                best = cost;
                pick = d;
            }
        }
    }
    jb->cover = pick < 0 ? 0 : (int32_t)pick;
}

/* Every 200 ms: base = window minimum, target from the 98th percentile of (r - base), or less
 * where a delay/late-loss cost says so; then the cover on the frame grid. */
static void update_target(tr_jbuf_t *jb, int64_t now)
{
    if (jb->window_len == 0)
        return;
    int32_t sorted[TR_JB_WINDOW];
    memcpy(sorted, jb->window, (size_t)jb->window_len * sizeof(int32_t));
    qsort(sorted, (size_t)jb->window_len, sizeof(int32_t), compare_int32);
    int32_t low = sorted[0];
    int32_t top = (jb->window_len - 1) * 98 / 100;
    int32_t high = sorted[top];
    /* The cover is where playout is, as a delay above the base, and choose_cover compares it
     * with the grid points around the new target: when the base moves (the window's fastest
     * packet leaves it, or a faster one comes), it moves the other way, so it still names the
     * same playout point. It used to keep its old offset: after a base 16 ms higher, the point
     * playout was on read as the one above it, took the bonus for staying put, and playout moved
     * there (20 ms more delay and an edit, for nothing). The target is a statistic of the window
     * above its fastest packet, and follows the base. */
    int64_t moved = jb->anchor + low - jb->base;
    jb->base = jb->anchor + low;
    int64_t cover = jb->cover - moved;
    jb->cover = cover < 0 ? 0 : cover > INT32_MAX / 2 ? INT32_MAX / 2 : (int32_t)cover;
    jb->stats.jitter = high - low;
    int32_t wanted = jb->fixed ? jb->min_delay
                               : cheapest_delay(sorted, jb->window_len, top) - low + SAFETY;
    if (wanted < jb->min_delay)
        wanted = jb->min_delay;
    if (wanted > jb->max_delay)
        wanted = jb->max_delay;
    if (wanted >= jb->target)
        jb->target = wanted;
    else
        jb->target = wanted > jb->target - SHRINK_STEP ? wanted : jb->target - SHRINK_STEP;
    choose_cover(jb, sorted, jb->window_len, now);
    /* Two misses confirm a spike only when they come PEAK_SURPRISE times closer together than
     * the window's own share of misses at this target predicts: where the target leaves 1 % of
     * packets late by choice (the cost said so), misses 100 packets apart are that choice, not a
     * spike, and must not ratchet the target up (on Gaussian jitter they kept it a grid step
     * high). With no misses expected, any two within PEAK_SPAN packets are a spike. */
    int64_t misses = percent_over(sorted, jb->window_len, jb->target - SAFETY);  /* % x n */
    int64_t span = misses > 0 ? (int64_t)jb->window_len * 100 / (misses * PEAK_SURPRISE)
                              : PEAK_SPAN;
    jb->peak_span = span < PEAK_SPAN ? (int32_t)span : PEAK_SPAN;
}

static int32_t count_valid(const tr_jbuf_t *jb, int64_t from, int32_t n)
{
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++)
        count += jb->valid[(from + i) & RING_MASK];
    return count;
}

/* The first stored sample in [from, limit), or limit; never before `from` (the newest packet's
 * end may be: it used to be returned, and playout holding in silence after late packets stepped
 * back to it, adding their 20-40 ms of delay for nothing). */
static int64_t next_valid(const tr_jbuf_t *jb, int64_t from, int64_t limit)
{
    if (limit > jb->newest_end)
        limit = jb->newest_end;
    if (limit < from)
        limit = from;
    for (int64_t t = from; t < limit; t++)
        if (jb->valid[t & RING_MASK])
            return t;
    return limit;
}

/* Take n samples from play_ts onwards into dst, clearing them from the ring. */
static void take(tr_jbuf_t *jb, int16_t *dst, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        int64_t at = (jb->play_ts + i) & RING_MASK;
        dst[i] = jb->valid[at] ? jb->pcm[at] : 0;
        jb->valid[at] = 0;
    }
    jb->play_ts += n;
}

static int64_t power(const int16_t *s, int32_t n)
{
    int64_t sum = 0;
    for (int32_t i = 0; i < n; i++)
        sum += (int32_t)s[i] * s[i];
    return sum / n;
}

/* How well x[0..FRAME) matches x[lag..lag+FRAME): squared correlation over energy, or -1. */
static double lag_score(const int16_t *x, int32_t lag)
{
    double cross = 0.0, energy = 1.0;
    for (int32_t i = 0; i < FRAME; i++) {
        cross += (double)x[i] * x[i + lag];
        energy += (double)x[i + lag] * x[i + lag];
    }
    return cross > 0.0 ? cross * cross / energy : -1.0;
}

/* How early, in samples, the packet holding the end of a frame starting at `ts` is needed: a
 * frame that starts mid-packet ends in the next packet, which must already be here. Steering on
 * err minus this (the slack) keeps pitch-period edits from making the next packet late. */
static int64_t phase_need(const tr_jbuf_t *jb, int64_t ts)
{
    if (jb->packet_len <= 0)
        return 0;
    int64_t into = (ts - jb->phase_ref) % jb->packet_len;
    if (into < 0)
        into += jb->packet_len;
    return into == 0 ? 0 : jb->packet_len - into;
}

/* Whether dropping `lag` samples now leaves the next packet's slot where it is (the slack after
 * the edit is not negative, give or take timestamp noise), with the audio it reads present. */
static int drop_fits(const tr_jbuf_t *jb, int64_t err, int32_t lag)
{
    return count_valid(jb, jb->play_ts + FRAME, lag) == lag &&
           err - lag - phase_need(jb, jb->play_ts + FRAME + lag) >= -EDIT_SLACK;
}

/* Play one frame while dropping one pitch period (in a quiet frame, any number of samples):
 * the lag that fits (drop_fits) and matches best, preferring the one that lands playout back on
 * a packet start, so no delay is left wasted between grid points; with `realign_only`, that one
 * or none. Returns 0 if none fits. */
static int shrink(tr_jbuf_t *jb, int16_t *out, int64_t err, int quiet, int realign_only)
{
    int16_t *x = jb->scratch;
    for (int32_t i = 0; i < 2 * FRAME; i++)
        x[i] = jb->pcm[(jb->play_ts + i) & RING_MASK];
    int32_t realign = (int32_t)phase_need(jb, jb->play_ts);
    if (realign == 0)
        realign = jb->packet_len;
    int32_t realign_max = quiet ? FRAME : TR_PLC_PITCH_MAX;
    int32_t p = 0;
    double best_score = -1.0;
    for (int32_t lag = TR_PLC_PITCH_MIN; lag <= TR_PLC_PITCH_MAX; lag++) {
        if (!drop_fits(jb, err, lag))
            continue;
        double score = lag_score(x, lag);
        if (score > best_score) {
            best_score = score;
            p = lag;
        }
    }
    if (realign > 0 && realign <= realign_max && realign != p &&
        (quiet || realign >= TR_PLC_PITCH_MIN) && drop_fits(jb, err, realign) &&
        (quiet || p == 0 || lag_score(x, realign) >= 0.7 * best_score))
        p = realign;
    if (p == 0 || (realign_only && p != realign))
        return 0;
    for (int32_t i = 0; i < p; i++) {
        int32_t w = (i + 1) * 256 / (p + 1);
        out[i] = (int16_t)((x[i] * (256 - w) + x[i + p] * w) / 256);
    }
    memcpy(out + p, x + 2 * p, (size_t)(FRAME - p) * sizeof(int16_t));
    int16_t discard[2 * FRAME];
    take(jb, discard, FRAME + p);
    tr_plc_good(&jb->plc, out, out, FRAME);
    jb->stats.shrinks++;
    return 1;
}

/* Play one frame while inserting p samples of concealment, merged by overlap-add. */
static void stretch(tr_jbuf_t *jb, int16_t *out, int32_t p)
{
    tr_plc_conceal(&jb->plc, out, p, 0);
    take(jb, jb->scratch, FRAME - p);
    if (p < FRAME)
        tr_plc_good(&jb->plc, jb->scratch, out + p, FRAME - p);
    jb->stats.concealed_samples += (uint32_t)p;
    jb->stats.stretches++;
}

/* How much a quiet frame's stretch inserts: all the delay wanted (-slack), at most a frame, in
 * one edit that leaves the next frame on a packet start (each edit costs as much as the next,
 * whatever its length, so a grid step is grown in one, not in pitch periods and a realignment). */
static int32_t growth(const tr_jbuf_t *jb, int64_t slack)
{
    int64_t want = -slack > FRAME ? FRAME : -slack < 1 ? 1 : -slack;
    int32_t step = jb->packet_len;
    if (step <= 0 || FRAME % step != 0)
        return (int32_t)want;
    int64_t n = (jb->play_ts + FRAME - jb->phase_ref) % step;   /* lands the next frame on one */
    if (n < 0)
        n += step;
    int64_t best = 0;
    for (; n <= FRAME; n += step)
        if (n > 0 && (best == 0 || labs((long)(n - want)) < labs((long)(best - want))))
            best = n;
    return labs((long)(best - want)) <= ALIGN_SLACK ? (int32_t)best : (int32_t)want;
}

/* Conceal n samples while holding play_ts for audio not yet here; if that audio turns out lost,
 * what was concealed already stands in for it (see skip_held). */
static void hold(tr_jbuf_t *jb, int32_t n)
{
    if (jb->held_at != jb->play_ts)
        jb->held = 0;
    jb->held_at = jb->play_ts;
    jb->held += n;
}

/* Count concealment that skipped audio as lost, provisionally: if the next packet turns out to
 * start a talkspurt beyond it, it was the end of the last spurt, not loss (see tr_jb_put). */
static void count_lost(tr_jbuf_t *jb, int32_t n)
{
    jb->stats.lost_samples += (uint32_t)n;
    jb->unconfirmed_lost += n;
}

/* Play FRAME samples from play_ts: stored runs as they are, gaps concealed (or silent). A gap
 * with audio stored after it is lost audio and skipped; a gap at the end with nothing after it
 * is audio not yet arrived: waited for (play_ts holds) when we are ahead of the ideal. */
static void play_runs(tr_jbuf_t *jb, int16_t *out, int was_silent, int64_t err)
{
    int32_t i = 0;
    while (i < FRAME) {
        int present = jb->valid[(jb->play_ts) & RING_MASK];
        int32_t run = 1;
        while (i + run < FRAME && jb->valid[(jb->play_ts + run) & RING_MASK] == present)
            run++;
        if (present || was_silent) {
            take(jb, out + i, run);              /* in silence a gap is zeros, not concealment */
            tr_plc_good(&jb->plc, out + i, out + i, run);
            if (present)
                jb->unconfirmed_lost = 0;
        } else {
            /* The gap starts where a packet starts: is that packet due yet? */
            int awaited = i + run == FRAME && jb->newest_end <= jb->play_ts && err - i < -EDIT_SLACK;
            tr_plc_conceal(&jb->plc, out + i, run, 1);
            jb->stats.concealed_samples += (uint32_t)run;
            if (awaited) {
                hold(jb, run);
            } else {
                jb->play_ts += run;
                count_lost(jb, run);
            }
        }
        i += run;
    }
}

/* Where a talkspurt resumes after a stall: audio stored from `next` is overdue by ideal - next.
 * Far overdue (a stalled queue released at once), playing it all would hold the stall's delay and
 * then take a second or more of pitch-period shrinks to shed it, so skip the overdue part: resume
 * at the first stored packet start within CATCH_UP of the ideal position. */
static int64_t catch_up(tr_jbuf_t *jb, int64_t next, int64_t ideal)
{
    if (ideal - next <= CATCH_UP || jb->packet_len <= 0)
        return next;
    int64_t from = ideal - CATCH_UP;
    int64_t into = (from - jb->phase_ref) % jb->packet_len;
    if (into < 0)
        into += jb->packet_len;
    if (into)
        from += jb->packet_len - into;
    int64_t at = next_valid(jb, from, jb->newest_end);
    if (at >= jb->newest_end)
        return next;
    for (int64_t t = next; t < at; t++)   /* skipped audio must not alias a packet a ring later */
        jb->valid[t & RING_MASK] = 0;
    return at;
}

/* Playout held for audio that then never came (later audio is here instead): the frames
 * concealed while holding already stood in for it, so skip up to that much of the gap at no
 * further cost, and the delay the hold added goes with it. Returns the samples skipped. */
static int32_t skip_held(tr_jbuf_t *jb)
{
    if (jb->held <= 0 || jb->held_at != jb->play_ts || jb->valid[jb->play_ts & RING_MASK] ||
        jb->newest_end <= jb->play_ts)
        return 0;
    int64_t resume = next_valid(jb, jb->play_ts, jb->play_ts + jb->held);
    int32_t skipped = (int32_t)(resume - jb->play_ts);
    jb->play_ts = resume;
    jb->held = 0;
    count_lost(jb, skipped);
    return skipped;
}

void tr_jb_get(tr_jbuf_t *jb, int64_t now_us, int16_t *out)
{
    if (!jb->have_stream) {
        memset(out, 0, FRAME * sizeof(int16_t));
        return;
    }
    int64_t now = now_us * 8 / 1000;
    if (++jb->frames % UPDATE_FRAMES == 1)
        update_target(jb, now);
    int64_t start = jb->play_ts;
    int64_t err = now - jb->base - jb->cover - jb->play_ts;
    int32_t present = count_valid(jb, jb->play_ts, FRAME);

    if (jb->silent) {
        /* Silence: nothing to play, so play_ts can move at no audible cost. The next talkspurt
         * starts exactly at its first sample when that sample is due (so frames stay aligned
         * with packets); until then play_ts follows the ideal position. */
        int64_t next = next_valid(jb, jb->play_ts, jb->newest_end);
        /* Frames are 20 ms apart, so start at the frame nearest the due time (within 10 ms). */
        if (next < jb->newest_end && now - jb->base - jb->cover - next >= -FRAME / 2) {
            next = catch_up(jb, next, now - jb->base - jb->cover);
            jb->play_ts = next;
            start = next;
            err = now - jb->base - jb->cover - next;
        } else {
            if (err > 0)
                jb->play_ts = next < jb->play_ts + err ? next : jb->play_ts + err;
            memset(out, 0, FRAME * sizeof(int16_t));
            tr_plc_good(&jb->plc, out, out, FRAME);
            goto done;
        }
        present = count_valid(jb, jb->play_ts, FRAME);
    } else {
        int32_t skipped = skip_held(jb);
        if (skipped) {
            start = jb->play_ts;
            err -= skipped;
            present = count_valid(jb, jb->play_ts, FRAME);
        }
    }
    if (present == 0) {
        /* Speech interrupted: late audio (we are ahead of the ideal) is waited for, lost audio
         * is skipped; both are concealed. */
        tr_plc_conceal(&jb->plc, out, FRAME, 1);
        jb->stats.concealed_samples += FRAME;
        /* Audio after the gap has already arrived: the missing packet is lost (or so late it
         * would be), not merely late, so waiting would only add delay. */
        /* In the stream's first second the statistics know little yet: hold for a late packet
         * up to one frame past the cover rather than lose it. */
        int early = jb->stats.received < STARTUP;
        int lost = jb->newest_end > jb->play_ts + FRAME && !early;
        if (lost || err - phase_need(jb, jb->play_ts) >= (early ? FRAME / 2 : -EDIT_SLACK)) {
            jb->play_ts += FRAME;
            count_lost(jb, FRAME);
        } else {
            hold(jb, FRAME);
        }
        if (jb->plc.erased >= 480)
            jb->silent = 1;
        goto done;
    }

    int was_silent = jb->silent;
    jb->silent = 0;
    if (!was_silent && present == FRAME) {
        int16_t peek[FRAME];
        for (int32_t i = 0; i < FRAME; i++)
            peek[i] = jb->pcm[(jb->play_ts + i) & RING_MASK];
        int quiet = power(peek, FRAME) < QUIET_POWER;
        int32_t threshold = quiet ? ADJUST_QUIET : ADJUST_SPEECH;
        int64_t slack = err - phase_need(jb, jb->play_ts);
        /* In speech a pitch-period edit is heard: a frame above the cover is shed at once in a
         * quiet frame, in speech only when no quiet frame came for PATIENCE frames; less than
         * that is shed in speech only by the drop that realigns playout with packet starts. */
        jb->waited = err > FRAME - ADJUST_SPEECH && !quiet ? jb->waited + 1 : 0;
        int realign_only = !quiet && jb->waited <= PATIENCE;
        /* In the stream's first packets the base and the target are still being learnt (a
         * faster packet lowers the base, the jitter seen so far raises the target): an edit
         * now would only be undone, so playout keeps the delay it started with, or grows. */
        int learning = jb->window_len < STARTUP;
        if (!learning && err > (quiet ? EDIT_SLACK : threshold) &&
            shrink(jb, out, err, quiet, realign_only))
            goto done;
        if (slack < -threshold - (quiet ? 0 : FRAME)) {
            stretch(jb, out, quiet ? growth(jb, slack) : tr_plc_pitch(&jb->plc));
            goto done;
        }
    }
    play_runs(jb, out, was_silent, err);
done:
    if (!jb->silent)                     /* in silence there is no audio whose delay to report */
        jb->stats.current_delay = (int32_t)(now - jb->base - start);
    jb->stats.target_delay = jb->target;
}
