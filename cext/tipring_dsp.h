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

/* cffi:end */

#endif
