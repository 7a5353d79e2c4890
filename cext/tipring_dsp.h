/*
 * tipring_dsp.h - the C core of TipRing: real-time DSP kernels called from Python through cffi.
 *
 * Rules for everything declared here:
 *   - C99, no Python.h, no allocation: the caller owns every buffer;
 *   - one call does one whole frame (or one whole bulk buffer), so the Python side makes one call per
 *     20 ms audio period per direction and cffi can release the GIL around it;
 *   - linear audio is signed 16-bit native-endian samples, G.711 codes are one byte per sample.
 *
 * The block between the cffi markers is read verbatim by cext/build_dsp.py as the cdef, so it holds
 * only plain declarations (no macros, no includes).
 */
#ifndef TIPRING_DSP_H
#define TIPRING_DSP_H

#include <stddef.h>
#include <stdint.h>

/* cffi:begin */

/* Build the G.711 lookup tables. Idempotent; the Python facade calls it once at import. */
void tr_dsp_init(void);

/* Version of this C core, bumped when the ABI of anything below changes. */
int tr_dsp_abi_version(void);

/*
 * G.711 (ITU-T G.711, bit-exact with the G.191 reference). Encoding keeps the 14 (mu-law) or
 * 13 (A-law) most significant bits of each 16-bit sample, as G.191 does; decoding returns 16-bit
 * samples scaled like G.191 (left-justified).
 */
void tr_ulaw_encode(const int16_t *pcm, uint8_t *code, size_t n);
void tr_ulaw_decode(const uint8_t *code, int16_t *pcm, size_t n);
void tr_alaw_encode(const int16_t *pcm, uint8_t *code, size_t n);
void tr_alaw_decode(const uint8_t *code, int16_t *pcm, size_t n);

/*
 * Tone generator (tone.c): a cadence of segments, each sounding up to 4 sine components (freq Hz,
 * level dBm0; 0 dBm0 is a sine of peak 32768 * 10^(-3.14/20)) for on_samples, then silence for
 * off_samples. Each segment names its own components, so SIT (three frequencies in sequence) and
 * DTMF digit strings are one plan. on_samples < 0 sounds forever (steady dial tone). After the
 * last segment the cadence restarts at segment loop_from, or ends when loop_from < 0.
 * Oscillators run phase-continuously across frames; each on period is shaped by a raised-cosine
 * ramp of ramp_samples at both ends, lying inside the on period, so edges are exact in samples.
 */
typedef struct {
    float freq_hz;
    float level_dbm0;
} tr_tone_component_t;

typedef struct {
    tr_tone_component_t comp[4];
    int32_t n_comp;
    int32_t on_samples;
    int32_t off_samples;
} tr_tone_segment_t;

typedef struct {
    tr_tone_segment_t seg[32];
    int32_t n_seg;
    int32_t loop_from;
    int32_t ramp_samples;
} tr_tone_plan_t;

typedef struct {
    tr_tone_plan_t plan;
    int32_t seg;             /* current segment, n_seg when finished */
    int64_t pos;             /* samples into the current segment */
    double re[4], im[4];     /* oscillator phasors (unit length) */
    double wre[4], wim[4];   /* per-sample rotation of each component */
    double amp[4];           /* peak amplitude of each component */
} tr_tone_gen_t;

/* Load a plan (copied) and start at its first sample. Returns 0, or -1 for an invalid plan. */
int tr_tone_start(tr_tone_gen_t *g, const tr_tone_plan_t *plan);

/*
 * Produce the next n samples. mix = 0 writes them, mix != 0 adds them to out (saturating).
 * Returns 1 while the cadence is still running after these samples, 0 once it has ended
 * (samples past the end are silence).
 */
int tr_tone_generate(tr_tone_gen_t *g, int16_t *out, size_t n, int mix);

/*
 * DTMF and fax tone detector (dtmf.c), one per line, fed the capture direction frame by frame.
 * Audio is cut into 102-sample blocks (12.75 ms, held across calls); for each block, a Goertzel
 * filter per half gives every DTMF/fax frequency's level and its true frequency (from the phase
 * advance between the halves), so a pair is accepted only within 2.5 % of nominal (Q.24: accept
 * 1.5 %, reject 3.5 %), with twist high-low within [-10, +6] dB, the pair holding 80 % of the
 * block's energy and both halves equally loud. A digit starts after 2 good blocks in a row and
 * ends after 3 blocks without it (a 10 ms break is bridged, a 50 ms gap is not). CNG (1100 Hz)
 * is reported after 400 ms, CED (2100 Hz) after 500 ms; CED phase reversals are left to the echo
 * canceller. Event times are sample indices counted from tr_dtmf_rx_init.
 */
enum {
    TR_DTMF_BLOCK = 102,
    TR_EV_DIGIT_START = 1,
    TR_EV_DIGIT_END = 2,
    TR_EV_FAX_CNG = 3,
    TR_EV_FAX_CED = 4
};

typedef struct {
    int32_t kind;            /* TR_EV_* */
    int32_t code;            /* ASCII '0'-'9', '*', '#', 'A'-'D'; 0 for fax tones */
    int64_t at;              /* sample index: start of the digit/tone, or end (END) */
    int32_t duration;        /* END: samples the digit lasted; otherwise 0 */
    float low_dbm0;          /* START: low-group (or fax tone) level; otherwise 0 */
    float high_dbm0;         /* START: high-group level; otherwise 0 */
} tr_dtmf_event_t;

typedef struct {
    /* tuning, set by tr_dtmf_rx_init and adjustable afterwards */
    float min_level_dbm0;    /* per tone; default -42 */
    float max_high_over_low; /* dB, default +6 */
    float max_low_over_high; /* dB, default +10 */
    /* working state */
    int16_t block[102];
    int32_t fill;
    int64_t samples;         /* samples fed so far */
    int32_t prev_code;       /* digit seen in the previous block, 0 none */
    int32_t digit;           /* digit in progress, 0 none */
    int32_t misses;
    int64_t digit_start, miss_start, prev_start;
    float prev_low, prev_high;
    int32_t fax_tone;        /* index of the fax tone being timed, -1 none */
    int32_t fax_blocks, fax_misses, fax_reported;
    int64_t fax_start;
    double coef[10], cosw[10], sinw[10];   /* Goertzel constants of each analysis frequency */
    double rot_re[20], rot_im[20];         /* phase alignment of each half block's result */
} tr_dtmf_rx_t;

void tr_dtmf_rx_init(tr_dtmf_rx_t *s);

/* Feed n samples; writes up to max_events events and returns how many (extra ones are dropped). */
int tr_dtmf_rx(tr_dtmf_rx_t *s, const int16_t *pcm, size_t n, tr_dtmf_event_t *events,
               int max_events);

/*
 * Caller-ID FSK modulator (callerid.c): 1200 baud, phase-continuous, 8 kHz. Sends seizure_bits
 * of alternating 0101... (starting with 0), then mark_bits of 1s, then each byte of data as a
 * start bit (0), 8 data bits LSB first and stop_bits 1s, then postamble_bits of 1s. Bell 202:
 * mark 1200 Hz, space 2200 Hz; ITU-T V.23 (ETSI): mark 1300 Hz, space 2100 Hz. Bit k covers the
 * samples i with floor(i * 1200 / 8000) == k (no drift); the burst rises and falls over 1 ms.
 * Fill the configuration fields and data, call tr_fsk_tx_start, then one tr_fsk_tx per frame.
 */
typedef struct {
    /* configuration */
    float mark_hz, space_hz;
    float level_dbm0;
    int32_t seizure_bits, mark_bits, stop_bits, postamble_bits;
    uint8_t data[256];
    int32_t len;
    /* progress */
    int64_t bit;             /* index of the bit being sent */
    int64_t total_bits;
    int32_t baud_phase;      /* advances 1200 a sample; a bit lasts 8000 */
    int64_t sample, total_samples;
    double re, im, amp;
    double mark_re, mark_im, space_re, space_im;
} tr_fsk_tx_t;

/* Check the configuration and rewind. Returns 0, or -1 if a field is out of range. */
int tr_fsk_tx_start(tr_fsk_tx_t *s);

/* Next n samples; 1 while bits remain after them, 0 once the burst is over (then silence). */
int tr_fsk_tx(tr_fsk_tx_t *s, int16_t *out, size_t n);

/*
 * Packet loss concealment for G.711 (in the spirit of G.711 Appendix I).
 * On the first lost sample the pitch period P (2.5..15 ms) is found by normalised
 * autocorrelation over the recent history; the lost signal is synthesised by cycling through
 * the last P (after 10 ms: 2P, after 20 ms: 3P) samples, joined by overlap-add over P/4 at each
 * wrap. Gain is 1 for the first 10 ms, then falls linearly to 0 at 60 ms. When real audio
 * returns, its first P/4 (+4 ms per further 10 ms lost, at most 10 ms) samples are cross-faded
 * with the continued synthetic signal, so there is no click either way.
 */
enum { TR_PLC_HISTORY = 480, TR_PLC_PITCH_MIN = 40, TR_PLC_PITCH_MAX = 120 };

typedef struct {
    int16_t history[480];        /* the last TR_PLC_HISTORY output samples, oldest first */
    int16_t onset[390];          /* the last 3.25 * TR_PLC_PITCH_MAX samples before the loss */
    int16_t cycle[360];          /* the 1, 2 or 3 pitch periods being repeated, tail pre-faded */
    int32_t pitch;               /* P in samples, valid while concealing */
    int32_t cycle_len;           /* samples in `cycle` (P, 2P or 3P) */
    int32_t cycle_pos;           /* next sample of `cycle` to play */
    int32_t erased;              /* samples concealed in the current loss, 0 = not concealing */
    int32_t concealed_total;     /* statistics: every sample ever concealed */
} tr_plc_t;

void tr_plc_init(tr_plc_t *plc);
/* Real audio: copy `in` to `out` (may be the same buffer), merging with a concealment in progress. */
void tr_plc_good(tr_plc_t *plc, const int16_t *in, int16_t *out, int32_t n);
/* Lost audio: write n synthetic samples. `fade` 0 = keep full level (used for time stretching). */
void tr_plc_conceal(tr_plc_t *plc, int16_t *out, int32_t n, int fade);
/* The pitch period (samples) of the recent output: the unit the jitter buffer stretches by. */
int32_t tr_plc_pitch(const tr_plc_t *plc);

/*
 * Adaptive jitter buffer for one RTP stream of G.711 audio (20 ms playout periods at 8 kHz).
 *
 * Algorithm:
 * - Timeline: RTP timestamps extended to 64 bits across wraps, in samples. Packets are decoded
 *   on arrival into a ring of samples (with a valid flag per sample), so any sender ptime
 *   (10..60 ms), reordering and duplicates reduce to "which samples are present".
 * - Delay statistics: every packet (late ones too) adds r = arrival - timestamp (both in samples)
 *   to a window of the last 500 packets. The base delay b is the window minimum (the fastest path
 *   seen; a windowed minimum follows sender/receiver clock drift). The jitter estimate is the 98th
 *   percentile of r - b, plus 2.5 ms.
 * - Target delay: re-evaluated every 200 ms, the delay d (at most that estimate) minimising
 *   (% of the window's packets later than d) x 10 ms + d: a thin heavy tail (a few long stalls)
 *   costs more delay to cover than the loss it saves, so the percentile is only a cap. Clamped to
 *   [min, max] (fixed mode: always min). A higher target applies at once (grow fast); a lower one
 *   is approached at 10 ms/s (shrink slowly: a 100 ms spike takes 10 s to shed, so one quiet
 *   interval does not undo what a spike taught, yet a past spike does not hold its delay for
 *   the rest of the call). A spike too short to move the percentile still counts: a second
 *   packet missing its slot soon after another raises the target at once to cover the smaller
 *   of the two. "Soon" is within 100 packets, or within half the gap between misses that the
 *   window predicts at the current target: where the cost chose to leave ~1 % of packets late,
 *   misses ~100 packets apart are that choice, not a spike (on Gaussian jitter they ratcheted
 *   the target a grid step up). Packets arriving within 5 ms of each other (a stalled queue
 *   released at once) are one peak, so a single stall does not confirm itself.
 * - Cover (the delay playout aims at): a get() plays a whole 20 ms frame, and a frame starting
 *   mid-packet needs the next packet as early as one starting on it, yet plays each sample later.
 *   So the delays that waste nothing are those that start frames on packet starts: a grid 20 ms
 *   apart, placed by the phase of our ticks against the sender's packets. Of the two grid points
 *   around the target, and the one playout is on if it is the step above those, the cover is the
 *   one with the lower delay + 12.5 ms x (% of the window's packets that would miss their slot),
 *   with a 10 ms bonus for the one playout is on (a move is an edit, and PESQ takes any shift
 *   inside an utterance as a defect). The target alone, rounded up, used to cost up to a frame
 *   of delay everywhere; the two points around it alone made the cover follow the target's slow
 *   descent a step down and its next rise back up, two moves for nothing.
 * - Playout: each get() plays 160 samples from play_ts. The ideal position is now - b - cover;
 *   err = ideal - play_ts (> 0: more delay than wanted, < 0: less).
 *   - In silence (no audio at play_ts and concealment faded out, or nothing played yet) play_ts
 *     jumps straight to the ideal (never past audio already buffered) or holds: inaudible. When
 *     audio resumes more than 20 ms overdue (a stall's burst), the overdue part is skipped: play
 *     resumes at the first packet within 20 ms of the ideal, rather than holding the stall's
 *     delay and shedding it by a second or more of pitch-period shrinks.
 *   - Audio missing mid-speech, with nothing after it yet: if err < -2 ms it is late, so hold
 *     play_ts and conceal (the delay grows by 20 ms at once); otherwise, or with later audio
 *     already here, it is lost: conceal and move on. In the first 50 packets (statistics still
 *     thin) a late packet is held for up to half a frame past the cover. If held audio turns out
 *     lost, the concealment already played stands in for it: the gap is skipped at no extra cost.
 *   - In the stream's first 50 packets (the base and the target still being learnt) playout
 *     makes no drop: it keeps the delay it started at, or grows.
 *   - Edits are heard in speech, not in quiet frames (under about -45 dBm0), so: in a quiet
 *     frame any err over 2 ms is dropped (a pitch period, or exactly the samples that put frames
 *     back on packet starts, up to a frame) and err under -5 ms gets all the delay wanted, up to a
 *     frame, inserted by concealment and overlap-add in one edit that leaves the next frame on a
 *     packet start (stretch; a grid step used to take three pitch periods and a realignment, four
 *     shifts where one does). In speech, err over 10 ms is only dropped by the one pitch-period
 *     edit that lands frames back on packet starts, unless 100 frames (2 s) of speech in a row
 *     found it so (no quiet frame came): then by any pitch period. Running speech has a quiet
 *     frame within 2 s, and a shift inside an utterance costs PESQ more than the delay kept
 *     (after Pareto stalls: 0.04; 25 frames used to be the wait). Stretching waits for -30 ms.
 *     No drop may move the next packet's slot earlier (so an edit cannot make it late): no
 *     clicks, few edits.
 * - Packets entirely before play_ts are late (counted and dropped, but they still teach the
 *   statistics); a new SSRC, or a packet more than 2 s off the timeline, resets the buffer. A
 *   packet more than the ring past play_ts is dropped as overflow while audio plays; while
 *   playout holds in silence (a stall or an outage over 1 s) it restarts playout from that
 *   packet, dropping what is stored, rather than turning the stream away for good.
 */
enum {
    TR_JB_RING = 8192,           /* samples of audio held (1.024 s), a power of two */
    TR_JB_WINDOW = 500,          /* packets in the delay statistics window */
    TR_JB_MAX_PAYLOAD = 480,     /* 60 ms of G.711 */
    TR_LAW_ULAW = 0,             /* RTP payload type numbers of G.711 (RFC 3551) */
    TR_LAW_ALAW = 8,
};

enum {                           /* tr_jb_put results */
    TR_JB_ACCEPTED = 0,
    TR_JB_LATE = 1,
    TR_JB_DUPLICATE = 2,
    TR_JB_DISCARDED = 3,         /* bad payload or beyond the ring */
    TR_JB_RESET = 4,             /* accepted after a reset (new SSRC or a jump) */
};

typedef struct {
    uint32_t received, late, duplicate, discarded, overflow, resets, shrinks, stretches;
    uint32_t lost_samples;       /* played as concealment because the audio never came in time */
    uint32_t concealed_samples;  /* all concealment, including holds while audio was late */
    int32_t current_delay;       /* samples: how much later than the fastest path we play */
    int32_t target_delay;        /* samples */
    int32_t jitter;              /* samples: the percentile estimate before clamping */
} tr_jb_stats_t;

typedef struct {
    int32_t min_delay, max_delay, fixed;  /* samples */
    int32_t have_stream, silent;
    uint32_t ssrc;
    int64_t last_ext;            /* extended timestamp of the furthest packet */
    int64_t play_ts;             /* next sample to play */
    int64_t newest_end;          /* one past the last sample stored */
    int64_t base;                /* b: minimum relative delay in the window */
    int64_t anchor;              /* relative delays are stored as offsets from this */
    int32_t target;
    int32_t cover;               /* the delay playout aims at: target moved onto the frame grid */
    int32_t held;                /* samples concealed while holding at held_at for late audio */
    int64_t held_at;
    int32_t waited;              /* frames of speech played a frame or more above the cover */
    int32_t window[500];
    int32_t window_len, window_head;
    int32_t frames;
    int32_t unconfirmed_lost;    /* lost samples of the current gap, until the next packet says */
    int32_t packet_len;          /* samples per packet of the sender, and a packet's start: */
    int64_t phase_ref;           /* where packet boundaries fall on the timeline */
    int32_t last_peak;           /* offset (r - b) of the last packet that missed its slot */
    int32_t since_peak;          /* packets since then */
    int32_t peak_span;           /* packets within which a second miss confirms a spike */
    int64_t peak_arrival;        /* when it arrived (samples) */
    int16_t pcm[8192];
    uint8_t valid[8192];
    int16_t scratch[480];
    tr_plc_t plc;
    tr_jb_stats_t stats;
} tr_jbuf_t;

void tr_jb_init(tr_jbuf_t *jb, int32_t min_delay_ms, int32_t max_delay_ms, int fixed);
int tr_jb_put(tr_jbuf_t *jb, uint32_t ssrc, uint16_t seq, uint32_t timestamp, int marker, int law,
              const uint8_t *payload, int32_t len, int64_t arrival_us);
void tr_jb_get(tr_jbuf_t *jb, int64_t now_us, int16_t *out);

/*
 * Line echo canceller for the 2-wire hybrid of the analog line (G.168 style).
 * Reference x: what we play to the line (far-end speech); input d: what we capture from it
 * (near-end speech plus hybrid echo of x); output e = d - (echo estimate).
 * - Two-path adaptive filter over a tail of up to 64 ms: a background filter adapts on every
 *   sample by proportionate NLMS (IPNLMS: taps that matter adapt faster, which suits the sparse
 *   impulse response of a hybrid), frozen during double talk (Geigel on the far-end peak, and once
 *   converged, capture power well above the foreground's echo estimate); the
 *   foreground filter, which makes the output, takes the background's coefficients only after it
 *   has cancelled better for three 10 ms blocks in a row, and the background is reset from the
 *   foreground when it diverges. Double talk the detector misses never reaches the output.
 * - Non-linear processor: while the far end talks alone and the residual is well below the
 *   far-end level, the residual is replaced by comfort noise at the near end's background level
 *   (tracked as a slow minimum), so the line neither echoes nor goes dead.
 * - A 2100 Hz tone with phase reversals (V.25 ANSam, modems and fax) in either direction disables
 *   the canceller (output = input) until the line has been quiet for 250 ms, as G.168 requires.
 */
enum { TR_EC_MAX_TAPS = 512 };

typedef struct {
    int32_t taps, pos, nlp_enabled;
    float x[1024];               /* far-end history, duplicated for contiguous reads */
    float fg[512], bg[512];      /* foreground and background filter coefficients */
    float gain[512];             /* IPNLMS per-tap step gains (mean 1), from |bg| per block */
    int32_t better_blocks;       /* consecutive blocks in which bg beat fg */
    float x_power;               /* running sum of x^2 over the tail */
    float block_d, block_fg, block_bg, block_y;  /* energies over the current 10 ms block */
    int32_t block_n;
    float chunk_max[9];          /* |x| maxima of 64-sample chunks over the tail (Geigel) */
    int32_t chunk, chunk_n;
    int32_t hangover;            /* samples of double talk still assumed */
    float d_short, y_short;      /* 5 ms powers of the capture and of the echo estimate */
    int32_t converged, unconverged_blocks;
    float far_level, near_noise, residual_level;
    uint32_t noise_seed;
    float cng_gain;              /* 0 = pass residual, 1 = comfort noise (smoothed) */
    float tone_re, tone_im, tone_energy, total_energy;  /* 2100 Hz detector block */
    float tone_cos[80], tone_sin[80];  /* 2100 Hz at 8 kHz repeats every 80 samples */
    int32_t tone_n, tone_blocks, reversals, quiet;
    float last_phase, last_step;
    int32_t phase_valid;
    int32_t bypass;              /* 1 while disabled by ANSam */
    uint32_t converged_blocks, copies, resets, nlp_samples;
} tr_ec_t;

void tr_ec_init(tr_ec_t *ec, int32_t tail_ms, int nlp);
/* Cancel the echo in n captured samples in place; far[] is what was played to the line at the
 * same time (the SLIC's transmit and receive are sample-aligned). */
void tr_ec_process(tr_ec_t *ec, const int16_t *far, int16_t *near, int32_t n);

/*
 * The audio path of one line (path.c): the two calls the media thread makes every 20 ms, whatever
 * the number of call legs.
 *
 * A leg (tr_leg_t) is one call's RTP stream as the DSP sees it: its own jitter buffer, PLC and
 * decoder (the packet's payload type picks the decoder), the law it is sent in, its direction and
 * RFC 3389 comfort noise, and its far end's audio of the last playout frame. A line carries up to
 * TR_PATH_LEGS legs at once: one for a call, two for a three-way conference, where the handset
 * hears both far ends and each far end hears the handset and the other far end, never itself.
 * tr_path_init attaches slot 0 (the single-call case); tr_path_attach_leg / tr_path_detach_leg
 * change which slots are live between frames. Packets go in with tr_jb_put on
 * &path->leg[slot].jb.
 *
 * Capture: echo cancel against what was played echo_delay samples before -> DTMF/fax-tone
 * detection -> transmit gain (silence while mute_tx, e.g. during RFC 4733 events); then for each
 * live leg that sends: plus the other legs' far-end audio of the last playout (saturating) ->
 * G.711 in the leg's law, into payload + slot * 160. With one leg the payload is exactly the
 * single-call one.
 * Playout: each live leg's jitter buffer get (decode or conceal; comfort noise in its far end's
 * silences; nothing from a leg that does not receive) -> saturating sum of the legs -> receive
 * gain (silence while mute_rx, e.g. under caller ID on call waiting) -> caller-ID FSK (replaces)
 * -> tones (mixed). A voice prompt replaces all of that for as long as it lasts: its samples are
 * played as given, and tones and FSK hold their place under it (a frame in which the prompt ends
 * is completed with the usual audio). The result is what the line plays and the echo
 * canceller's reference. Tones, FSK and prompts are loaded between frames; a prompt's samples
 * stay the caller's and must live until it ends or is stopped.
 */
enum { TR_PATH_REFERENCE = 2048, TR_PATH_LEGS = 2, TR_PLAYOUT_PROMPT_ENDED = 1 };

typedef struct {
    tr_jbuf_t jb;
    int32_t live;                /* a call's RTP is attached to this slot */
    int32_t law;                 /* TR_LAW_ULAW or TR_LAW_ALAW: what this leg is sent in */
    int32_t send, receive;       /* the negotiated direction (hold) */
    float comfort_rms;           /* RFC 3389: noise for the far end's silences, 0 = none */
    uint32_t noise_seed;
    int16_t far[160];            /* the far end's audio in the last playout (zero if not received) */
} tr_leg_t;

typedef struct {
    tr_ec_t ec;
    tr_dtmf_rx_t dtmf;
    tr_leg_t leg[2];
    tr_tone_gen_t tone;
    tr_fsk_tx_t fsk;
    const int16_t *prompt;       /* voice prompt samples (the caller's), prompt_len of them */
    int64_t prompt_len, prompt_pos;
    int32_t prompt_active;
    int32_t echo_cancel, tone_active, fsk_active, mute_tx, mute_rx;
    int32_t echo_delay;          /* samples from playing a sample to capturing its echo */
    int32_t jitter_min_ms, jitter_max_ms, jitter_fixed;  /* for each leg's jitter buffer */
    float tx_gain, rx_gain;      /* linear */
    int16_t reference[2048];     /* what was played, by sample index modulo the size */
    int64_t played, captured;    /* samples through each direction so far */
} tr_path_t;

/* Slot 0 is attached in `law`, slot 1 is free. */
void tr_path_init(tr_path_t *p, int law, int32_t echo_tail_ms, int32_t echo_delay_ms, int nlp,
                  int32_t jitter_min_ms, int32_t jitter_max_ms, int jitter_fixed);
void tr_path_set_gains(tr_path_t *p, float tx_db, float rx_db);
/* (Re)start a slot for a call sent in `law`: a fresh jitter buffer, sending and receiving, no
 * comfort noise. Returns 0, or -1 for a slot out of range. */
int tr_path_attach_leg(tr_path_t *p, int slot, int law);
/* Free a slot: it contributes nothing and is sent nothing from the next frame on. */
void tr_path_detach_leg(tr_path_t *p, int slot);
/* A comfort noise packet's level on a leg (RFC 3389: 0..127 -dBov); 127 or more turns it off. */
void tr_path_comfort_noise(tr_path_t *p, int slot, int level_dbov);
int tr_path_start_tone(tr_path_t *p, const tr_tone_plan_t *plan);
int tr_path_start_fsk(tr_path_t *p);
/* Play n samples instead of the line's other audio (replacing a prompt in progress). Returns 0,
 * or -1 for an empty prompt. */
int tr_path_start_prompt(tr_path_t *p, const int16_t *pcm, int64_t n);
void tr_path_stop_prompt(tr_path_t *p);
/* 160 samples in; 160 G.711 codes out at payload + 160 * slot for each live leg that sends
 * (payload holds TR_PATH_LEGS * 160 bytes; other slots are left alone); returns the number of
 * detector events written. */
int tr_capture(tr_path_t *p, const int16_t *in, uint8_t *payload, tr_dtmf_event_t *events,
               int max_events);
/* 160 samples out, for the playout period that starts now. Returns TR_PLAYOUT_PROMPT_ENDED if a
 * voice prompt played its last sample in this frame, else 0. */
int tr_playout(tr_path_t *p, int64_t now_us, int16_t *out);

/* cffi:end */

#endif
