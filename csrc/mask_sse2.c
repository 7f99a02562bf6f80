/* SSE2 masking kernel. Compiled with -msse2 only; empty off x86. */
#include "fastws_mask.h"
#include "mask_internal.h"

#ifdef FWS_ARCH_X86
#include <emmintrin.h>

void fws_mask_sse2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    phase &= 3;
    if (n < 16) {
        fws_mask_small(dst, src, n, key, phase);
        return;
    }
    /* Head and tail vectors are loaded before anything is stored and stored
     * last, so the overlap with the aligned body is harmless in place. */
    const __m128i k0 = _mm_set1_epi32((int)fws_key32(key, phase));
    const __m128i head = _mm_xor_si128(_mm_loadu_si128((const __m128i *)src), k0);
    const __m128i tail = _mm_xor_si128(
        _mm_loadu_si128((const __m128i *)(src + n - 16)),
        _mm_set1_epi32((int)fws_key32(key, phase + (unsigned)(n & 3))));

    size_t i = (16 - ((uintptr_t)dst & 15)) & 15; /* first 16-aligned dst byte */
    const __m128i k = _mm_set1_epi32((int)fws_key32(key, phase + (unsigned)(i & 3)));
    if (FWS_MASK_STREAMS(n, dst, src)) {
        /* Large copy: non-temporal stores (see fws_mask_stream_min). */
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
            _mm_stream_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
            _mm_stream_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
            _mm_stream_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
            _mm_stream_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
        }
        /* The head and tail stores below overlap streamed lines: they must
         * land after them. */
        _mm_sfence();
    }
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_store_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        _mm_store_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
        _mm_store_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
        _mm_store_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
    }
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_store_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
    }
    _mm_storeu_si128((__m128i *)dst, head);
    _mm_storeu_si128((__m128i *)(dst + n - 16), tail);
}

#else
typedef int fws_mask_sse2_unused; /* ISO C forbids an empty translation unit */
#endif
