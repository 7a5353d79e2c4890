/*
 * G.711 A-law and mu-law, bit-exact with ITU-T G.191.
 *
 * Why tables: a 20 ms frame is 160 samples and the Pi Zero 2 W has little cache to spare, but the
 * encoders only look at the top 12 (A-law magnitude + sign) or 14 (mu-law) bits, so a 4 KiB and a
 * 16 KiB byte table indexed by the shifted sample replace the per-sample segment search. The tables
 * are computed once from the segment formulas below, which are the specification; the vectors in
 * shared/vectors/g711 check both.
 */
#include "tipring_dsp.h"

/* One's complement magnitude: G.191 maps a negative x to ~x (so -1 -> 0), not to -x. */
static unsigned magnitude(int x) { return (unsigned)(x < 0 ? ~x : x); }

/* Number of significant bits of v (0 for 0): the segment is read off the position of the leading one. */
static unsigned bit_length(unsigned v)
{
    unsigned n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

/*
 * A-law: sign + 12-bit magnitude (x >> 4 of the one's complement). Segment 0 holds magnitudes 0..15
 * linearly; segment s >= 1 holds [16 << (s-1), 16 << s) with 4 mantissa bits below the leading one.
 * Even bits are inverted on the wire.
 */
static uint8_t alaw_from_linear(int x)
{
    unsigned mag = magnitude(x) >> 4;                 /* 0..2047 */
    unsigned len = bit_length(mag);
    unsigned seg = len > 4 ? len - 4 : 0;             /* 0..7 */
    unsigned mant = seg ? (mag >> (seg - 1)) & 0x0F : mag;
    unsigned code = (seg << 4) | mant;
    if (x >= 0)
        code |= 0x80;
    return (uint8_t)(code ^ 0x55);
}

static int16_t alaw_to_linear(uint8_t a)
{
    unsigned v = (unsigned)(a ^ 0x55) & 0x7F;
    unsigned seg = v >> 4;
    int mag = (int)(v & 0x0F);
    if (seg > 0)
        mag += 16;                                     /* restore the implicit leading one */
    mag = (mag << 4) + 8;                              /* left-justify and take the mid-step */
    if (seg > 1)
        mag <<= seg - 1;
    return (int16_t)((a & 0x80) ? mag : -mag);
}

/*
 * mu-law: 14-bit magnitude plus a bias of 33 so that every segment starts at a power of two; the
 * biased value lies in [32 << e, 64 << e) for exponent e = 0..7, with 4 mantissa bits below the
 * leading one. All bits are inverted on the wire.
 */
static uint8_t ulaw_from_linear(int x)
{
    unsigned biased = (magnitude(x) >> 2) + 33;
    if (biased > 0x1FFF)
        biased = 0x1FFF;
    unsigned exp = bit_length(biased) - 6;            /* biased >= 33 has at least 6 bits */
    unsigned mant = (biased >> (exp + 1)) & 0x0F;
    unsigned code = ((7 - exp) << 4) | (0x0F - mant);
    if (x >= 0)
        code |= 0x80;
    return (uint8_t)code;
}

static int16_t ulaw_to_linear(uint8_t u)
{
    unsigned v = (unsigned)(~u) & 0xFF;
    unsigned seg = (v >> 4) & 0x07;
    unsigned mant = v & 0x0F;
    int step = 4 << (seg + 1);
    int mag = (0x80 << seg) + step * (int)mant + step / 2 - 4 * 33;
    return (int16_t)((u & 0x80) ? mag : -mag);
}

static uint8_t alaw_enc_table[4096];   /* index: (uint16_t)x >> 4 */
static uint8_t ulaw_enc_table[16384];  /* index: (uint16_t)x >> 2 */
static int16_t alaw_dec_table[256];
static int16_t ulaw_dec_table[256];
static int tables_ready;

void tr_dsp_init(void)
{
    if (tables_ready)
        return;
    for (unsigned i = 0; i < 4096; i++)
        alaw_enc_table[i] = alaw_from_linear((int16_t)(uint16_t)(i << 4));
    for (unsigned i = 0; i < 16384; i++)
        ulaw_enc_table[i] = ulaw_from_linear((int16_t)(uint16_t)(i << 2));
    for (unsigned i = 0; i < 256; i++) {
        alaw_dec_table[i] = alaw_to_linear((uint8_t)i);
        ulaw_dec_table[i] = ulaw_to_linear((uint8_t)i);
    }
    tables_ready = 1;
}

int tr_dsp_abi_version(void) { return 8; }

void tr_ulaw_encode(const int16_t *pcm, uint8_t *code, size_t n)
{
    for (size_t i = 0; i < n; i++)
        code[i] = ulaw_enc_table[(uint16_t)pcm[i] >> 2];
}

void tr_ulaw_decode(const uint8_t *code, int16_t *pcm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pcm[i] = ulaw_dec_table[code[i]];
}

void tr_alaw_encode(const int16_t *pcm, uint8_t *code, size_t n)
{
    for (size_t i = 0; i < n; i++)
        code[i] = alaw_enc_table[(uint16_t)pcm[i] >> 4];
}

void tr_alaw_decode(const uint8_t *code, int16_t *pcm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pcm[i] = alaw_dec_table[code[i]];
}
