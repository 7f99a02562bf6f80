/* UTF-8 scanner, AArch64 NEON build (no extra flags: NEON is baseline).
 *
 * The lookup-table scheme of utf8_avx2.c on 16-byte registers, four at a
 * time (64-byte blocks): the bytes one to three positions back come from
 * vext, the nibble tables from tbl, and a block's verdict from one
 * horizontal max.  ASCII blocks are skipped; the last partial block is
 * copied into a zero-padded local buffer (never read past the end); any
 * error sends the scalar scanner back to the last code point boundary before
 * the block for the exact position.
 */
#include "fastws_utf8.h"

#ifdef FWS_UTF8_AARCH64

#include <arm_neon.h>
#include <string.h>

typedef struct {
    uint8x16_t h1, l1, h2;
} tables_t;

static inline uint8x16_t block_errors16(uint8x16_t cur, uint8x16_t prev, const tables_t *t)
{
    uint8x16_t p1 = vextq_u8(prev, cur, 15);
    uint8x16_t p2 = vextq_u8(prev, cur, 14);
    uint8x16_t p3 = vextq_u8(prev, cur, 13);
    uint8x16_t h1 = vqtbl1q_u8(t->h1, vshrq_n_u8(p1, 4));
    uint8x16_t l1 = vqtbl1q_u8(t->l1, vandq_u8(p1, vdupq_n_u8(0x0F)));
    uint8x16_t h2 = vqtbl1q_u8(t->h2, vshrq_n_u8(cur, 4));
    uint8x16_t special = vandq_u8(vandq_u8(h1, l1), h2);
    /* bit 7 set iff the byte two back is E0..FF or three back is F0..FF */
    uint8x16_t must23 = vorrq_u8(vqsubq_u8(p2, vdupq_n_u8(0x60)), vqsubq_u8(p3, vdupq_n_u8(0x70)));
    must23 = vandq_u8(must23, vdupq_n_u8(0x80));
    return veorq_u8(must23, special);
}

/* Non-zero iff the 64 bytes c[0..3] (after `prev`) contain an error. */
static inline int block_errors(const uint8x16_t c[4], uint8x16_t prev, const tables_t *t)
{
    uint8x16_t e = vorrq_u8(block_errors16(c[0], prev, t), block_errors16(c[1], c[0], t));
    e = vorrq_u8(e, vorrq_u8(block_errors16(c[2], c[1], t), block_errors16(c[3], c[2], t)));
    return vmaxvq_u8(e) != 0;
}

/* Non-zero iff a block ending with `last` ends inside a sequence. */
static inline int block_open(uint8x16_t last)
{
    return vgetq_lane_u8(last, 15) >= 0xC0 || vgetq_lane_u8(last, 14) >= 0xE0 || vgetq_lane_u8(last, 13) >= 0xF0;
}

static inline void load4(uint8x16_t c[4], const uint8_t *p)
{
    c[0] = vld1q_u8(p);
    c[1] = vld1q_u8(p + 16);
    c[2] = vld1q_u8(p + 32);
    c[3] = vld1q_u8(p + 48);
}

static inline int is_ascii(const uint8x16_t c[4])
{
    return vmaxvq_u8(vorrq_u8(vorrq_u8(c[0], c[1]), vorrq_u8(c[2], c[3]))) < 0x80;
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

size_t fws_utf8_scan_neon(const uint8_t *p, size_t n)
{
    tables_t t;
    t.h1 = vld1q_u8(fws_utf8_tbl_h1);
    t.l1 = vld1q_u8(fws_utf8_tbl_l1);
    t.h2 = vld1q_u8(fws_utf8_tbl_h2);
    const uint8x16_t zero = vdupq_n_u8(0);
    /* last 16 bytes of the previous block; zeros after an ASCII block */
    uint8x16_t prev = zero;
    uint8x16_t c[4];
    size_t i = 0;

    while (i + 64 <= n) {
        load4(c, p + i);
        if (is_ascii(c)) {
            if (block_open(prev))
                return finish_scalar(p, n, i);
            i += 64;
            prev = zero;
            continue;
        }
        if (block_errors(c, prev, &t))
            return finish_scalar(p, n, i);
        prev = c[3];
        i += 64;
    }

    size_t r = n - i; /* 0..63 */
    if (r == 0)
        return block_open(prev) ? finish_scalar(p, n, i) : n;
    uint8_t buf[64];
    memset(buf, 0, sizeof buf);
    memcpy(buf, p + i, r);
    load4(c, buf);
    if (block_errors(c, prev, &t))
        return finish_scalar(p, n, i);
    return n;
}

#endif /* FWS_UTF8_AARCH64 */
