/* UTF-8 scanner, SSE2 build (compile with -msse2; baseline on x86-64).
 *
 * SSE2 has no byte shuffle, so there is no lookup-table validator here: the
 * vector code skips ASCII 64 bytes at a time and hands each non-ASCII
 * stretch to the scalar scanner in windows of up to 256 bytes.  Each window
 * starts on a code point boundary; a sequence cut by the window's end is
 * picked up again by the next window.
 */
#include "fastws_utf8.h"

#ifdef FWS_UTF8_X86_64

#include <emmintrin.h>

static inline __m128i load(const uint8_t *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

size_t fws_utf8_scan_sse2(const uint8_t *p, size_t n)
{
    size_t i = 0; /* always on a code point boundary */
    for (;;) {
        while (i + 64 <= n) {
            __m128i a = _mm_or_si128(load(p + i), load(p + i + 16));
            __m128i b = _mm_or_si128(load(p + i + 32), load(p + i + 48));
            if (_mm_movemask_epi8(_mm_or_si128(a, b)))
                break;
            i += 64;
        }
        while (i + 16 <= n && !_mm_movemask_epi8(load(p + i)))
            i += 16;
        if (i + 16 > n)
            return i + fws_utf8_scan_scalar(p + i, n - i);
        size_t end = n - i > 256 ? i + 256 : n;
        size_t k = fws_utf8_scan_scalar(p + i, end - i);
        if (i + k == end) {
            i = end;
            continue;
        }
        /* Stopped early: a real error, unless the window cut a sequence
         * (fewer than 4 bytes left in a window that is not the last). */
        if (end == n || end - (i + k) >= 4 || k == 0)
            return i + k;
        i += k;
    }
}

#endif /* FWS_UTF8_X86_64 */
