/* UTF-8 scanner, AVX-512 build (compile with -mavx512f -mavx512bw
 * -mavx512vl -mavx512vbmi; selected only when the CPU has AVX512BW and
 * AVX512_VBMI).
 *
 * Same lookup-table scheme as utf8_avx2.c, on 64-byte blocks: the bytes one,
 * two and three positions back come from a single two-source byte permute
 * (VBMI) of the previous and current blocks, the lookups are in-lane byte
 * shuffles, and the verdict is a mask test.  Long ASCII runs are skipped 256
 * bytes at a time.  The last partial block is read with a masked load (no
 * access past the end), whose zeroed lanes make a sequence cut by the end
 * of the input show up as an error.  Any error sends the scalar scanner back
 * to the last code point boundary before the block for the exact position.
 */
#include "fastws_utf8.h"

#ifdef FWS_UTF8_X86_64

#if !defined(__AVX512BW__) && !defined(_MSC_VER)
#error "utf8_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vbmi"
#endif

#include <immintrin.h>

typedef struct {
    __m512i h1, l1, h2, idx1, nib, c80, cc0, ce0, cf0;
} consts_t;

static inline __m512i tbl(const uint8_t t[16])
{
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)t));
}

static const uint8_t iota[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

static inline void init_consts(consts_t *k)
{
    k->h1 = tbl(fws_utf8_tbl_h1);
    k->l1 = tbl(fws_utf8_tbl_l1);
    k->h2 = tbl(fws_utf8_tbl_h2);
    /* permutex2var indices: 0..63 = previous block, 64..127 = current, so
     * 63 + j puts the byte before position j at position j */
    k->idx1 = _mm512_add_epi8(_mm512_loadu_si512((const void *)iota), _mm512_set1_epi8(63));
    k->nib = _mm512_set1_epi8(0x0F);
    k->c80 = _mm512_set1_epi8((char)0x80);
    k->cc0 = _mm512_set1_epi8((char)0xC0);
    k->ce0 = _mm512_set1_epi8((char)0xE0);
    k->cf0 = _mm512_set1_epi8((char)0xF0);
}

/* Lead bytes of the block as bit masks (bit j = byte j). */
typedef struct {
    uint64_t e0, f0; /* bytes >= E0 and >= F0 */
} leads_t;

/* Error check of `cur` given the previous block (`prev`, `pl`).  Bytes
 * two back in E0..FF or three back in F0..FF must be continuations: that
 * comes from the lead masks shifted by 2 and 3 positions (carrying in the
 * previous block's top bits), and flips bit 7 of the table result, which
 * is set for "continuation after continuation".  Returns non-zero on error
 * and stores this block's lead masks in *cl. */
static inline int block_errors(__m512i cur, __m512i prev, leads_t pl, leads_t *cl, const consts_t *k)
{
    __m512i p1 = _mm512_permutex2var_epi8(prev, k->idx1, cur);
    __m512i h1 = _mm512_shuffle_epi8(k->h1, _mm512_and_si512(_mm512_srli_epi16(p1, 4), k->nib));
    __m512i l1 = _mm512_shuffle_epi8(k->l1, _mm512_and_si512(p1, k->nib));
    __m512i h2 = _mm512_shuffle_epi8(k->h2, _mm512_and_si512(_mm512_srli_epi16(cur, 4), k->nib));
    __m512i special = _mm512_ternarylogic_epi32(h1, l1, h2, 0x80); /* h1 & l1 & h2 */
    uint64_t e0 = _mm512_cmpge_epu8_mask(cur, k->ce0);
    uint64_t f0 = _mm512_cmpge_epu8_mask(cur, k->cf0);
    uint64_t must23 = (e0 << 2) | (pl.e0 >> 62) | (f0 << 3) | (pl.f0 >> 61);
    /* flip bit 7 where a continuation is required (adding 0x80 to a byte
     * flips its top bit and nothing else) */
    __m512i err = _mm512_mask_add_epi8(special, must23, special, k->c80);
    cl->e0 = e0;
    cl->f0 = f0;
    return _mm512_test_epi8_mask(err, err) != 0;
}

/* Non-zero iff the block ends inside a sequence: byte 63 >= C0, byte 62 >=
 * E0 or byte 61 >= F0. */
static inline int block_open(__m512i cur, leads_t cl, const consts_t *k)
{
    uint64_t c0 = _mm512_cmpge_epu8_mask(cur, k->cc0);
    return ((c0 >> 63) | (cl.e0 >> 62) | (cl.f0 >> 61)) != 0;
}

static inline __m512i load(const uint8_t *p)
{
    return _mm512_loadu_si512((const void *)p);
}

/* See utf8_avx2.c: restart the scalar scanner at a code point boundary no
 * later than the start of any sequence left open before `i`. */
static size_t finish_scalar(const uint8_t *p, size_t n, size_t i)
{
    size_t j = i > 3 ? i - 3 : 0;
    while (j < i && (p[j] & 0xC0u) == 0x80u)
        j++;
    return j + fws_utf8_scan_scalar(p + j, n - j);
}

size_t fws_utf8_scan_avx512(const uint8_t *p, size_t n)
{
    consts_t k;
    init_consts(&k);
    const __m512i zero = _mm512_setzero_si512();
    const leads_t none = {0, 0};
    /* The previous block and its lead masks.  After an ASCII block (or at
     * the start) they are zeros, which give the same verdicts as the real
     * bytes of a block that ends on a code point boundary. */
    __m512i prev = zero;
    leads_t pl = none, cl;
    size_t i = 0;

    while (i + 64 <= n) {
        __m512i cur = load(p + i);
        if (!_mm512_movepi8_mask(cur)) {
            /* ASCII block: only a sequence left open before it can fail */
            if (block_open(prev, pl, &k))
                return finish_scalar(p, n, i);
            i += 64;
            while (i + 256 <= n) {
                __m512i a = _mm512_or_si512(load(p + i), load(p + i + 64));
                __m512i b = _mm512_or_si512(load(p + i + 128), load(p + i + 192));
                if (_mm512_movepi8_mask(_mm512_or_si512(a, b)))
                    break;
                i += 256;
            }
            prev = zero;
            pl = none;
            continue;
        }
        if (block_errors(cur, prev, pl, &cl, &k))
            return finish_scalar(p, n, i);
        prev = cur;
        pl = cl;
        i += 64;
    }

    size_t r = n - i; /* 0..63 */
    if (r == 0)
        return block_open(prev, pl, &k) ? finish_scalar(p, n, i) : n;
    /* Masked load: nothing past the end is touched; the zeroed lanes after
     * a sequence cut by the end make it fail the check. */
    __m512i cur = _mm512_maskz_loadu_epi8(((__mmask64)1 << r) - 1, p + i);
    if (block_errors(cur, prev, pl, &cl, &k))
        return finish_scalar(p, n, i);
    return n;
}

#endif /* FWS_UTF8_X86_64 */
