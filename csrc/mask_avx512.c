/* AVX-512 (F+BW+VL) masking kernel. Byte-masked loads and stores handle the
 * unaligned head and the tail, so there is no scalar code. Empty off x86. */
#include "fastws_mask.h"
#include "mask_internal.h"

#ifdef FWS_ARCH_X86
#include <immintrin.h>

/* Lowest `m` bits set, 0 <= m <= 64. */
FWS_INLINE __mmask64 fws_low_bits64(size_t m)
{
    /* Portable form (also for 32-bit x86); compiles to bzhi with BMI2. */
    return (__mmask64)(m >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << m) - 1));
}

void fws_mask_avx512(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    phase &= 3;
    if (n <= 32) {
        /* Small frames stay in 256-bit registers. Masked-off bytes are
         * neither read (no fault, suppressed) nor written. */
        __mmask32 m = (__mmask32)_bzhi_u32(~0u, (unsigned)n);
        __m256i v = _mm256_maskz_loadu_epi8(m, src);
        v = _mm256_xor_si256(v, _mm256_set1_epi32((int)fws_key32(key, phase)));
        _mm256_mask_storeu_epi8(dst, m, v);
        return;
    }

    size_t i = (64 - ((uintptr_t)dst & 63)) & 63; /* first 64-aligned dst byte */
    if (i > n)
        i = n;
    if (i) {
        __mmask64 m = fws_low_bits64(i);
        __m512i v = _mm512_maskz_loadu_epi8(m, src);
        v = _mm512_xor_si512(v, _mm512_set1_epi32((int)fws_key32(key, phase)));
        _mm512_mask_storeu_epi8(dst, m, v);
    }
    const __m512i k = _mm512_set1_epi32((int)fws_key32(key, phase + (unsigned)(i & 3)));
    if (FWS_MASK_STREAMS(n, dst, src)) {
        /* Large copy: non-temporal stores (see fws_mask_stream_min). */
        for (; i + 256 <= n; i += 256) {
            __m512i a = _mm512_loadu_si512((const void *)(src + i));
            __m512i b = _mm512_loadu_si512((const void *)(src + i + 64));
            __m512i c = _mm512_loadu_si512((const void *)(src + i + 128));
            __m512i d = _mm512_loadu_si512((const void *)(src + i + 192));
            _mm512_stream_si512((void *)(dst + i), _mm512_xor_si512(a, k));
            _mm512_stream_si512((void *)(dst + i + 64), _mm512_xor_si512(b, k));
            _mm512_stream_si512((void *)(dst + i + 128), _mm512_xor_si512(c, k));
            _mm512_stream_si512((void *)(dst + i + 192), _mm512_xor_si512(d, k));
        }
        _mm_sfence(); /* order the streamed stores before anything after */
    } else if (fws_copy_backward(dst, src)) {
        /* The whole 64-byte blocks, last first (see fws_copy_backward). */
        const size_t start = i, end = i + ((n - i) & ~(size_t)63);
        size_t j = end;
        for (; j - start >= 256; j -= 256) {
            __m512i a = _mm512_loadu_si512((const void *)(src + j - 64));
            __m512i b = _mm512_loadu_si512((const void *)(src + j - 128));
            __m512i c = _mm512_loadu_si512((const void *)(src + j - 192));
            __m512i d = _mm512_loadu_si512((const void *)(src + j - 256));
            _mm512_store_si512((void *)(dst + j - 64), _mm512_xor_si512(a, k));
            _mm512_store_si512((void *)(dst + j - 128), _mm512_xor_si512(b, k));
            _mm512_store_si512((void *)(dst + j - 192), _mm512_xor_si512(c, k));
            _mm512_store_si512((void *)(dst + j - 256), _mm512_xor_si512(d, k));
        }
        for (; j - start >= 64; j -= 64) {
            __m512i a = _mm512_loadu_si512((const void *)(src + j - 64));
            _mm512_store_si512((void *)(dst + j - 64), _mm512_xor_si512(a, k));
        }
        i = end;
    }
    for (; i + 256 <= n; i += 256) {
        __m512i a = _mm512_loadu_si512((const void *)(src + i));
        __m512i b = _mm512_loadu_si512((const void *)(src + i + 64));
        __m512i c = _mm512_loadu_si512((const void *)(src + i + 128));
        __m512i d = _mm512_loadu_si512((const void *)(src + i + 192));
        _mm512_store_si512((void *)(dst + i), _mm512_xor_si512(a, k));
        _mm512_store_si512((void *)(dst + i + 64), _mm512_xor_si512(b, k));
        _mm512_store_si512((void *)(dst + i + 128), _mm512_xor_si512(c, k));
        _mm512_store_si512((void *)(dst + i + 192), _mm512_xor_si512(d, k));
    }
    for (; i + 64 <= n; i += 64) {
        __m512i a = _mm512_loadu_si512((const void *)(src + i));
        _mm512_store_si512((void *)(dst + i), _mm512_xor_si512(a, k));
    }
    if (i < n) {
        __mmask64 m = fws_low_bits64(n - i);
        __m512i v = _mm512_maskz_loadu_epi8(m, src + i);
        _mm512_mask_storeu_epi8(dst + i, m, _mm512_xor_si512(v, k));
    }
}

#else
typedef int fws_mask_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
