/* UTF-8 validation: scalar scanner, incremental state machine, ISA dispatch.
 *
 * Structure of a feed:
 *   1. a code point left unfinished by the previous feed is completed (or
 *      rejected) one byte at a time by a small state machine;
 *   2. the bulk is handed to the selected scanner (scalar or SIMD), which
 *      returns the longest prefix made of complete valid code points;
 *   3. what follows that prefix (a truncated sequence of at most 3 bytes, or
 *      the start of an invalid one) goes through the state machine again,
 *      which either keeps it as pending state or pinpoints the error.
 * The SIMD scanners only need to be right about "longest complete valid
 * prefix"; everything about carrying state lives here.
 */
#include "fastws_utf8.h"
#include "fastws_cpu.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Scalar scanning.  Two parts:                                             */
/*  - scan_branchy: one code point at a time with explicit range checks;    */
/*    exact, simple, used to pinpoint errors;                               */
/*  - fws_utf8_scan_scalar: an ASCII skip plus a table-driven state machine */
/*    without data-dependent branches for non-ASCII runs, checked every 32  */
/*    bytes; on an error (or a sequence cut by the end) scan_branchy        */
/*    re-scans the last chunk from a code point boundary.                   */
/* ------------------------------------------------------------------------ */

#define FWS_HI8 0x8080808080808080ull

static inline int is_cont(uint8_t c) { return (c & 0xC0u) == 0x80u; }

/* The first index >= i that is not inside a run of ASCII bytes read 8 at a
 * time (32 at a time while the run lasts); bytes past the last whole word of
 * an ASCII run are left to the caller. */
static inline size_t skip_ascii(const uint8_t *p, size_t i, size_t n)
{
    while (i + 32 <= n) {
        uint64_t a, b, c, d;
        memcpy(&a, p + i, 8);
        memcpy(&b, p + i + 8, 8);
        memcpy(&c, p + i + 16, 8);
        memcpy(&d, p + i + 24, 8);
        if ((a | b | c | d) & FWS_HI8)
            break;
        i += 32;
    }
    while (i + 8 <= n) {
        uint64_t a;
        memcpy(&a, p + i, 8);
        if (a & FWS_HI8)
            break;
        i += 8;
    }
    return i;
}

static size_t scan_branchy(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        i = skip_ascii(p, i, n);
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c < 0x80u) {
            i++;
            continue;
        }
        if (c < 0xC2u) /* stray continuation, or overlong C0/C1 */
            return i;
        if (c < 0xE0u) {
            if (i + 1 >= n || !is_cont(p[i + 1]))
                return i;
            i += 2;
            continue;
        }
        if (c < 0xF0u) {
            if (i + 2 >= n)
                return i;
            uint8_t b1 = p[i + 1];
            uint8_t lo = (c == 0xE0u) ? 0xA0u : 0x80u; /* E0 80..9F overlong */
            uint8_t hi = (c == 0xEDu) ? 0x9Fu : 0xBFu; /* ED A0..BF surrogate */
            if (b1 < lo || b1 > hi || !is_cont(p[i + 2]))
                return i;
            i += 3;
            continue;
        }
        if (c < 0xF5u) {
            if (i + 3 >= n)
                return i;
            uint8_t b1 = p[i + 1];
            uint8_t lo = (c == 0xF0u) ? 0x90u : 0x80u; /* F0 80..8F overlong */
            uint8_t hi = (c == 0xF4u) ? 0x8Fu : 0xBFu; /* F4 90.. > U+10FFFF */
            if (b1 < lo || b1 > hi || !is_cont(p[i + 2]) || !is_cont(p[i + 3]))
                return i;
            i += 4;
            continue;
        }
        return i; /* F5..FF never appear in UTF-8 */
    }
    return n;
}

/* Shift-based state machine: state k is stored as 6*k, and dfa[b] holds, in
 * bits 6k..6k+5, the next state (times 6) after byte b in state k, so one
 * step is `s = dfa[b] >> (s & 63)` and the low 6 bits of s are the state.
 * The error state is absorbing. */
enum { S_ACC, S_ERR, S_C1, S_C2, S_C3, S_E0, S_ED, S_F0, S_F4 };
/* S_C1/C2/C3: that many continuations due (80..BF); after E0 the next byte
 * must be A0..BF, after ED 80..9F, after F0 90..BF, after F4 80..8F. */
#define DFA_ACCEPT ((uint64_t)S_ACC * 6)
#define DFA_ERROR ((uint64_t)S_ERR * 6)
#define T_(state, next) ((uint64_t)(next) * 6 << ((state) * 6))
#define ROW(acc, c1, c2, c3, e0, ed, f0, f4)                                                         \
    (T_(S_ACC, acc) | T_(S_ERR, S_ERR) | T_(S_C1, c1) | T_(S_C2, c2) | T_(S_C3, c3) | T_(S_E0, e0) | \
     T_(S_ED, ed) | T_(S_F0, f0) | T_(S_F4, f4))
#define LEAD(next) ROW(next, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR)
/*                          ACC    C1     C2     C3     E0     ED     F0     F4 */
#define R_ASCII ROW(S_ACC, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR)
#define R_80_8F ROW(S_ERR, S_ACC, S_C1, S_C2, S_ERR, S_C1, S_ERR, S_C2)
#define R_90_9F ROW(S_ERR, S_ACC, S_C1, S_C2, S_ERR, S_C1, S_C2, S_ERR)
#define R_A0_BF ROW(S_ERR, S_ACC, S_C1, S_C2, S_C1, S_ERR, S_C2, S_ERR)
#define R_BAD LEAD(S_ERR) /* C0, C1, F5..FF */
#define X2(...) __VA_ARGS__, __VA_ARGS__
#define X4(...) X2(X2(__VA_ARGS__))
#define X8(...) X2(X4(__VA_ARGS__))
#define X16(...) X2(X8(__VA_ARGS__))
static const uint64_t dfa[256] = {
    X16(X8(R_ASCII)),                                     /* 00..7F */
    X16(R_80_8F), X16(R_90_9F), X16(R_A0_BF), X16(R_A0_BF), /* 80..BF */
    X2(R_BAD), X16(LEAD(S_C1)), X8(LEAD(S_C1)), X4(LEAD(S_C1)), X2(LEAD(S_C1)), /* C0..DF */
    LEAD(S_E0), X8(LEAD(S_C2)), X4(LEAD(S_C2)), LEAD(S_ED), X2(LEAD(S_C2)),      /* E0..EF */
    LEAD(S_F0), X2(LEAD(S_C3)), LEAD(S_C3), LEAD(S_F4), X8(R_BAD), X2(R_BAD), R_BAD, /* F0..FF */
};

/* Restart point for scan_branchy: the first code point boundary at or after
 * i - 3 (bytes before i are valid except for one sequence left open, which
 * starts at most 3 bytes back). */
static size_t boundary_before(const uint8_t *p, size_t i)
{
    size_t j = i > 3 ? i - 3 : 0;
    while (j < i && is_cont(p[j]))
        j++;
    return j;
}

size_t fws_utf8_scan_scalar(const uint8_t *p, size_t n)
{
    size_t i = 0, chunk = 0;
    uint64_t s = DFA_ACCEPT;
    while (i < n) {
        if ((s & 63) == DFA_ACCEPT) {
            i = skip_ascii(p, i, n);
            if (i >= n)
                break;
        }
        chunk = i;
        size_t end = n - i > 32 ? i + 32 : n;
        for (; i < end; i++)
            s = dfa[p[i]] >> (s & 63);
        if ((s & 63) == DFA_ERROR)
            break;
    }
    if ((s & 63) == DFA_ACCEPT)
        return n;
    size_t j = boundary_before(p, chunk);
    return j + scan_branchy(p + j, n - j);
}

/* ------------------------------------------------------------------------ */
/* Nibble tables for the vector validators.  For a byte `a` followed by a   */
/* byte `c`, h1[a >> 4] & l1[a & 15] & h2[c >> 4] has one bit per error:   */
/*   0x01  lead C0..FF not followed by a continuation (truncated)           */
/*   0x02  ASCII followed by a continuation (stray continuation)            */
/*   0x04  E0 followed by 80..9F (overlong 3-byte form)                     */
/*   0x08  F4..FF followed by 90..BF (above U+10FFFF)                       */
/*   0x10  ED followed by A0..BF (surrogate)                                */
/*   0x20  C0 or C1 followed by a continuation (overlong 2-byte form)       */
/*   0x40  F0 or F5..FF followed by 80..8F (overlong 4-byte / too large)    */
/*   0x80  continuation followed by continuation: not an error by itself;   */
/*         XORed with "must be the 3rd/4th byte of a sequence" (the byte    */
/*         two back is E0..FF or the byte three back is F0..FF).            */
/* Each condition is a product of a set of high nibbles and a set of low    */
/* nibbles of `a` and a set of high nibbles of `c`, so the AND is exact     */
/* (checked over all 65536 pairs when the tables were derived).             */
/* ------------------------------------------------------------------------ */

const uint8_t fws_utf8_tbl_h1[16] = {0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
                                     0x80, 0x80, 0x80, 0x80, 0x21, 0x01, 0x15, 0x49};
const uint8_t fws_utf8_tbl_l1[16] = {0xE7, 0xA3, 0x83, 0x83, 0x8B, 0xCB, 0xCB, 0xCB,
                                     0xCB, 0xCB, 0xCB, 0xCB, 0xCB, 0xDB, 0xCB, 0xCB};
const uint8_t fws_utf8_tbl_h2[16] = {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
                                     0xE6, 0xAE, 0xBA, 0xBA, 0x01, 0x01, 0x01, 0x01};

/* ------------------------------------------------------------------------ */
/* Byte-at-a-time state machine for sequences split across feeds.           */
/* state = need | lo << 8 | hi << 16: `need` continuation bytes still due,  */
/* the next one must lie in [lo, hi].  0 = between code points.             */
/* ------------------------------------------------------------------------ */

#define FWS_REJECT 0xFFFFFFFFu
#define PACK(need, lo, hi) ((uint32_t)(need) | ((uint32_t)(lo) << 8) | ((uint32_t)(hi) << 16))

/* Returns 0 on success, 1 on error (st is then rejected, seq_start = error
 * position).  `pos` is the absolute offset of `c`. */
static int step(fws_utf8_state *st, uint8_t c, uint64_t pos)
{
    uint32_t s = st->state;
    if (s == 0) {
        if (c < 0x80u)
            return 0;
        if (c < 0xC2u)
            s = 0;
        else if (c < 0xE0u)
            s = PACK(1, 0x80, 0xBF);
        else if (c == 0xE0u)
            s = PACK(2, 0xA0, 0xBF);
        else if (c == 0xEDu)
            s = PACK(2, 0x80, 0x9F);
        else if (c < 0xF0u)
            s = PACK(2, 0x80, 0xBF);
        else if (c == 0xF0u)
            s = PACK(3, 0x90, 0xBF);
        else if (c < 0xF4u)
            s = PACK(3, 0x80, 0xBF);
        else if (c == 0xF4u)
            s = PACK(3, 0x80, 0x8F);
        else
            s = 0;
        if (s == 0) {
            st->state = FWS_REJECT;
            st->seq_start = pos;
            st->total = pos;
            return 1;
        }
        st->state = s;
        st->pending = 1;
        st->seq_start = pos;
        return 0;
    }
    uint32_t lo = (s >> 8) & 0xFFu, hi = (s >> 16) & 0xFFu, need = s & 0xFFu;
    if (c < lo || c > hi) {
        st->state = FWS_REJECT;
        st->total = st->seq_start;
        return 1;
    }
    if (need == 1) {
        st->state = 0;
        st->pending = 0;
    } else {
        st->state = PACK(need - 1, 0x80, 0xBF);
        st->pending++;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch.                                                                */
/* ------------------------------------------------------------------------ */

enum { ISA_UNSET = -1, ISA_SCALAR = 0, ISA_SSE2, ISA_AVX2, ISA_AVX512, ISA_NEON };

static int g_isa = ISA_UNSET;

#if defined(__GNUC__) || defined(__clang__)
#define ISA_LOAD() __atomic_load_n(&g_isa, __ATOMIC_RELAXED)
#define ISA_STORE(v) __atomic_store_n(&g_isa, (v), __ATOMIC_RELAXED)
#else
#define ISA_LOAD() (*(volatile int *)&g_isa)
#define ISA_STORE(v) (*(volatile int *)&g_isa = (v))
#endif

static int detect_isa(void)
{
#ifdef FWS_UTF8_X86_64
    unsigned f = fws_cpu_features();
    if ((f & FWS_CPU_AVX512BW) && (f & FWS_CPU_AVX512VBMI))
        return ISA_AVX512;
    if (f & FWS_CPU_AVX2)
        return ISA_AVX2;
    if (f & FWS_CPU_SSE2)
        return ISA_SSE2;
#endif
#ifdef FWS_UTF8_AARCH64
    if (fws_cpu_features() & FWS_CPU_NEON)
        return ISA_NEON;
#endif
    return ISA_SCALAR;
}

static int current_isa(void)
{
    int isa = ISA_LOAD();
    if (isa == ISA_UNSET) {
        isa = detect_isa();
        ISA_STORE(isa);
    }
    return isa;
}

static size_t scan(const uint8_t *p, size_t n)
{
    switch (current_isa()) {
#ifdef FWS_UTF8_X86_64
    case ISA_AVX512:
        return fws_utf8_scan_avx512(p, n);
    case ISA_AVX2:
        return fws_utf8_scan_avx2(p, n);
    case ISA_SSE2:
        return fws_utf8_scan_sse2(p, n);
#endif
#ifdef FWS_UTF8_AARCH64
    case ISA_NEON:
        return fws_utf8_scan_neon(p, n);
#endif
    default:
        return fws_utf8_scan_scalar(p, n);
    }
}

const char *fws_utf8_isa(void)
{
    switch (current_isa()) {
    case ISA_AVX512:
        return "avx512";
    case ISA_AVX2:
        return "avx2";
    case ISA_SSE2:
        return "sse2";
    case ISA_NEON:
        return "neon";
    default:
        return "scalar";
    }
}

int fws_utf8_set_isa(const char *name)
{
    int isa;
    if (!name)
        return -1;
    if (strcmp(name, "auto") == 0) {
        ISA_STORE(detect_isa());
        return 0;
    }
    if (strcmp(name, "scalar") == 0) {
        ISA_STORE(ISA_SCALAR);
        return 0;
    }
    unsigned f = fws_cpu_features();
    (void)f;
    isa = ISA_UNSET;
#ifdef FWS_UTF8_X86_64
    if (strcmp(name, "sse2") == 0 && (f & FWS_CPU_SSE2))
        isa = ISA_SSE2;
    if (strcmp(name, "avx2") == 0 && (f & FWS_CPU_AVX2))
        isa = ISA_AVX2;
    if (strcmp(name, "avx512") == 0 && (f & FWS_CPU_AVX512BW) && (f & FWS_CPU_AVX512VBMI))
        isa = ISA_AVX512;
#endif
#ifdef FWS_UTF8_AARCH64
    if (strcmp(name, "neon") == 0 && (f & FWS_CPU_NEON))
        isa = ISA_NEON;
#endif
    if (isa == ISA_UNSET)
        return -1;
    ISA_STORE(isa);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Public API.                                                              */
/* ------------------------------------------------------------------------ */

void fws_utf8_init(fws_utf8_state *st)
{
    memset(st, 0, sizeof *st);
}

int fws_utf8_feed(fws_utf8_state *st, const uint8_t *p, size_t n, uint64_t *err_pos)
{
    if (st->state == FWS_REJECT) {
        *err_pos = st->seq_start;
        return 1;
    }
    if (n == 0)
        return 0; /* also keeps p == NULL out of pointer arithmetic */
    const uint64_t base = st->total;
    size_t i = 0;
    /* 1. finish a code point left open by the previous feed */
    while (st->state != 0 && i < n) {
        if (step(st, p[i], base + i)) {
            *err_pos = st->seq_start;
            return 1;
        }
        i++;
    }
    if (i < n) {
        /* 2. bulk */
        i += scan(p + i, n - i);
        /* 3. at most a few bytes: a truncated sequence or the error */
        for (; i < n; i++) {
            if (step(st, p[i], base + i)) {
                *err_pos = st->seq_start;
                return 1;
            }
        }
    }
    st->total = base + n;
    return 0;
}

int fws_utf8_finish(const fws_utf8_state *st, uint64_t *err_pos)
{
    if (st->state == 0)
        return 0;
    *err_pos = st->seq_start;
    return 1;
}

int fws_utf8_validate(const uint8_t *p, size_t n, size_t *err_pos)
{
    if (n == 0)
        return 0;
    size_t k = scan(p, n);
    if (k == n)
        return 0;
    /* p[k] starts an invalid or truncated sequence: either way the longest
     * valid prefix ends at k. */
    *err_pos = k;
    return 1;
}
