/* NEON masking kernel (AArch64). Empty elsewhere. */
#include "fastws_mask.h"
#include "mask_internal.h"

#ifdef FWS_ARCH_ARM64
#include <arm_neon.h>

FWS_INLINE uint8x16_t fws_neon_key(const uint8_t key[4], unsigned phase)
{
    return vreinterpretq_u8_u32(vdupq_n_u32(fws_key32(key, phase)));
}

void fws_mask_neon(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    phase &= 3;
    if (n < 16) {
        fws_mask_small(dst, src, n, key, phase);
        return;
    }
    /* The tail vector is loaded before anything is stored and stored last,
     * so its overlap with the body is harmless in place. */
    const uint8x16_t k = fws_neon_key(key, phase);
    const uint8x16_t tail = veorq_u8(vld1q_u8(src + n - 16),
                                     fws_neon_key(key, phase + (unsigned)(n & 3)));
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint8x16_t a = vld1q_u8(src + i);
        uint8x16_t b = vld1q_u8(src + i + 16);
        uint8x16_t c = vld1q_u8(src + i + 32);
        uint8x16_t d = vld1q_u8(src + i + 48);
        vst1q_u8(dst + i, veorq_u8(a, k));
        vst1q_u8(dst + i + 16, veorq_u8(b, k));
        vst1q_u8(dst + i + 32, veorq_u8(c, k));
        vst1q_u8(dst + i + 48, veorq_u8(d, k));
    }
    for (; i + 16 <= n; i += 16)
        vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), k));
    vst1q_u8(dst + n - 16, tail);
}

#else
typedef int fws_mask_neon_unused; /* ISO C forbids an empty translation unit */
#endif
