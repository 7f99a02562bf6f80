/* WebSocket XOR masking (RFC 6455 section 5.3). Plain C11, no Python.h. */
#ifndef FASTWS_MASK_H
#define FASTWS_MASK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst[i] = src[i] ^ key[(phase + i) & 3] for i in [0, n).
 * dst == src (in place) or the two ranges do not overlap; any alignment.
 * Dispatches to the best kernel for this CPU (resolved on first use). */
void fws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);

/* "avx512" | "avx2" | "sse2" | "neon" | "scalar": the kernel fws_mask uses. */
const char *fws_mask_isa(void);

/* Portable kernel (64-bit words), always available; also the test reference. */
void fws_mask_scalar(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);

/* Per-ISA kernels, same contract as fws_mask. Each exists only where its
 * file was compiled for the target architecture; call them only when
 * fws_cpu_features() reports the ISA. */
void fws_mask_sse2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);
void fws_mask_avx2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);
void fws_mask_avx512(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);
void fws_mask_neon(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase);

#ifdef __cplusplus
}
#endif

#endif /* FASTWS_MASK_H */
