/* AVX2 masking kernel. Compiled with the AVX2 flag set; empty off x86. */
#include "fastws_mask.h"
#include "mask_internal.h"

#ifdef FWS_ARCH_X86
#include <immintrin.h>

void fws_mask_avx2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    phase &= 3;
    if (n < 16) {
        fws_mask_small(dst, src, n, key, phase);
        return;
    }
    if (n < 32) { /* 16..31: two overlapping 16-byte vectors, both loaded first */
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + n - 16));
        a = _mm_xor_si128(a, _mm_set1_epi32((int)fws_key32(key, phase)));
        b = _mm_xor_si128(b, _mm_set1_epi32((int)fws_key32(key, phase + (unsigned)(n & 3))));
        _mm_storeu_si128((__m128i *)dst, a);
        _mm_storeu_si128((__m128i *)(dst + n - 16), b);
        return;
    }
    /* Head and tail vectors are loaded before anything is stored and stored
     * last, so the overlap with the aligned body is harmless in place. */
    const __m256i k0 = _mm256_set1_epi32((int)fws_key32(key, phase));
    const __m256i head = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)src), k0);
    const __m256i tail = _mm256_xor_si256(
        _mm256_loadu_si256((const __m256i *)(src + n - 32)),
        _mm256_set1_epi32((int)fws_key32(key, phase + (unsigned)(n & 3))));

    size_t i = (32 - ((uintptr_t)dst & 31)) & 31; /* first 32-aligned dst byte */
    const __m256i k = _mm256_set1_epi32((int)fws_key32(key, phase + (unsigned)(i & 3)));
    if (FWS_MASK_STREAMS(n, dst, src)) {
        /* Large copy: non-temporal stores (see fws_mask_stream_min). */
        for (; i + 128 <= n; i += 128) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
            __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
            __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
            _mm256_stream_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
            _mm256_stream_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, k));
            _mm256_stream_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, k));
            _mm256_stream_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, k));
        }
        /* The head and tail stores below overlap streamed lines: they must
         * land after them. */
        _mm_sfence();
    } else if (fws_copy_backward(dst, src)) {
        /* The whole 32-byte blocks, last first (see fws_copy_backward); the
         * head and tail below are stored after them, as in the forward loop. */
        const size_t start = i, end = i + ((n - i) & ~(size_t)31);
        size_t j = end;
        for (; j - start >= 128; j -= 128) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(src + j - 32));
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + j - 64));
            __m256i c = _mm256_loadu_si256((const __m256i *)(src + j - 96));
            __m256i d = _mm256_loadu_si256((const __m256i *)(src + j - 128));
            _mm256_store_si256((__m256i *)(dst + j - 32), _mm256_xor_si256(a, k));
            _mm256_store_si256((__m256i *)(dst + j - 64), _mm256_xor_si256(b, k));
            _mm256_store_si256((__m256i *)(dst + j - 96), _mm256_xor_si256(c, k));
            _mm256_store_si256((__m256i *)(dst + j - 128), _mm256_xor_si256(d, k));
        }
        for (; j - start >= 32; j -= 32) {
            __m256i a = _mm256_loadu_si256((const __m256i *)(src + j - 32));
            _mm256_store_si256((__m256i *)(dst + j - 32), _mm256_xor_si256(a, k));
        }
        i = end;
    }
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
        _mm256_store_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
        _mm256_store_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, k));
        _mm256_store_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, k));
        _mm256_store_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, k));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm256_store_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
    }
    _mm256_storeu_si256((__m256i *)dst, head);
    _mm256_storeu_si256((__m256i *)(dst + n - 32), tail);
}

#else
typedef int fws_mask_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
