/* UTF-8 scanner, AVX2 build (compile with -mavx2).
 *
 * Lookup-table validation after Keiser and Lemire, "Validating UTF-8 In Less
 * Than One Instruction Per Byte" (2021): each byte is classified together
 * with the byte before it through three 16-entry tables indexed by nibbles,
 * whose AND has a bit set for every error of a two-byte window; the third
 * and fourth bytes of long sequences are checked by comparing "this byte
 * must be a continuation" (from the bytes two and three back) against
 * "this byte is a continuation following a continuation".
 *
 * The vector code only answers "is this 32-byte block clean?".  When it is
 * not, the scalar scanner restarts from the last code point boundary before
 * the block and finds the exact position.  Long ASCII runs are skipped 128
 * bytes at a time.  The last partial block is copied into a zero-padded
 * local buffer, never read past the end.
 */
#include "fastws_utf8.h"

#ifdef FWS_UTF8_X86_64

#if !defined(__AVX2__) && !defined(_MSC_VER)
#error "utf8_avx2.c must be compiled with -mavx2"
#endif

#include <immintrin.h>

static inline __m256i tbl(const uint8_t t[16])
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)t));
}

/* Error bits (non-zero = invalid somewhere in `cur`, or in a sequence that
 * `prev` left open).  `prev` is the previous 32 bytes, or zeros when the
 * previous block ended on a code point boundary. */
static inline __m256i block_errors(__m256i cur, __m256i prev, __m256i th1, __m256i tl1, __m256i th2)
{
    const __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i t = _mm256_permute2x128_si256(prev, cur, 0x21); /* prev.hi : cur.lo */
    __m256i p1 = _mm256_alignr_epi8(cur, t, 15);
    __m256i p2 = _mm256_alignr_epi8(cur, t, 14);
    __m256i p3 = _mm256_alignr_epi8(cur, t, 13);
    __m256i h1 = _mm256_shuffle_epi8(th1, _mm256_and_si256(_mm256_srli_epi16(p1, 4), nib));
    __m256i l1 = _mm256_shuffle_epi8(tl1, _mm256_and_si256(p1, nib));
    __m256i h2 = _mm256_shuffle_epi8(th2, _mm256_and_si256(_mm256_srli_epi16(cur, 4), nib));
    __m256i special = _mm256_and_si256(_mm256_and_si256(h1, l1), h2);
    /* bit 7 set iff the byte two back is E0..FF or three back is F0..FF */
    __m256i must23 = _mm256_or_si256(_mm256_subs_epu8(p2, _mm256_set1_epi8(0x60)),
                                     _mm256_subs_epu8(p3, _mm256_set1_epi8(0x70)));
    must23 = _mm256_and_si256(must23, _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must23, special);
}

/* Non-zero iff the block ends inside a multi-byte sequence. */
static inline int block_open(__m256i cur)
{
    const __m256i max = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, (char)0xEF, (char)0xDF, (char)0xBF);
    __m256i x = _mm256_subs_epu8(cur, max);
    return !_mm256_testz_si256(x, x);
}

static inline __m256i load(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* r (1..31) bytes from p into the low bytes of a vector, zeros above, with
 * no access outside p[0..r): whole 32-bit words by masked load, the last
 * 1..3 bytes assembled by hand and blended in. */
static inline __m256i load_tail(const uint8_t *p, size_t r)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int words = (int)(r / 4);
    __m256i wmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(words), lane);
    __m256i v = _mm256_maskload_epi32((const int *)(const void *)p, wmask);
    size_t rem = r & 3;
    if (rem) {
        const uint8_t *q = p + r - rem;
        uint32_t last = q[0];
        if (rem > 1)
            last |= (uint32_t)q[1] << 8;
        if (rem > 2)
            last |= (uint32_t)q[2] << 16;
        __m256i at = _mm256_cmpeq_epi32(_mm256_set1_epi32(words), lane);
        v = _mm256_blendv_epi8(v, _mm256_set1_epi32((int)last), at);
    }
    return v;
}

/* Everything before `i` passed the block checks except, possibly, a
 * sequence left open by the previous block, which starts at most 3 bytes
 * back.  The first non-continuation byte in p[i-3..i) therefore starts a
 * code point (if there is none, the 3 bytes end a 4-byte sequence and `i`
 * itself is a boundary).  The scalar scanner takes over from there. */
static size_t finish_scalar(const uint8_t *p, size_t n, size_t i)
{
    size_t j = i > 3 ? i - 3 : 0;
    while (j < i && (p[j] & 0xC0u) == 0x80u)
        j++;
    return j + fws_utf8_scan_scalar(p + j, n - j);
}

size_t fws_utf8_scan_avx2(const uint8_t *p, size_t n)
{
    const __m256i th1 = tbl(fws_utf8_tbl_h1), tl1 = tbl(fws_utf8_tbl_l1), th2 = tbl(fws_utf8_tbl_h2);
    const __m256i zero = _mm256_setzero_si256();
    /* The previous block; after an ASCII block (or at the start) zeros,
     * which give the same verdicts as the real bytes of a block that ends on
     * a code point boundary. */
    __m256i prev = zero;
    size_t i = 0;

    while (i + 32 <= n) {
        __m256i cur = load(p + i);
        if (!_mm256_movemask_epi8(cur)) {
            /* ASCII block: only a sequence left open before it can fail */
            if (block_open(prev))
                return finish_scalar(p, n, i);
            i += 32;
            while (i + 128 <= n) {
                __m256i a = _mm256_or_si256(load(p + i), load(p + i + 32));
                __m256i b = _mm256_or_si256(load(p + i + 64), load(p + i + 96));
                if (_mm256_movemask_epi8(_mm256_or_si256(a, b)))
                    break;
                i += 128;
            }
            prev = zero;
            continue;
        }
        __m256i err = block_errors(cur, prev, th1, tl1, th2);
        if (!_mm256_testz_si256(err, err))
            return finish_scalar(p, n, i);
        prev = cur;
        i += 32;
    }

    /* Tail: fewer than 32 bytes, loaded into a zero-padded block so that a
     * sequence cut by the end of the input fails the check. */
    size_t r = n - i;
    if (r == 0)
        return block_open(prev) ? finish_scalar(p, n, i) : n;
    __m256i cur = load_tail(p + i, r);
    __m256i err = block_errors(cur, prev, th1, tl1, th2);
    if (!_mm256_testz_si256(err, err))
        return finish_scalar(p, n, i);
    return n;
}

#endif /* FWS_UTF8_X86_64 */
