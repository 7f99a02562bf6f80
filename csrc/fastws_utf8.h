/* fastws UTF-8 validation kernels (plain C11, no Python.h).
 *
 * Verdicts and error positions match CPython's UTF-8 decoder: an input is
 * valid iff bytes.decode("utf-8") succeeds, and the error position is the
 * length of the longest valid prefix (UnicodeDecodeError.start).
 *
 * The incremental validator carries a partial code point across calls and
 * fails as soon as the bytes seen so far cannot start valid UTF-8
 * (e.g. F4 90, ED A0 and E0 80 are rejected on their second byte).
 */
#ifndef FASTWS_UTF8_H
#define FASTWS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Zero-initialised = start state.  Fields are private: use the accessors. */
typedef struct {
    uint32_t state;     /* 0: between code points; else packed DFA state */
    uint32_t pending;   /* bytes of the current partial sequence seen so far */
    uint64_t total;     /* bytes accepted so far (error position once failed) */
    uint64_t seq_start; /* absolute offset of the partial sequence / error */
} fws_utf8_state;

void fws_utf8_init(fws_utf8_state *st);

/* 0: every byte fed so far can prefix valid UTF-8 (st may be mid-sequence).
 * 1: invalid, *err_pos = absolute length of the longest valid prefix.
 * Once invalid, every further call returns 1 with the same position. */
int fws_utf8_feed(fws_utf8_state *st, const uint8_t *p, size_t n, uint64_t *err_pos);

/* 0: input complete; 1: invalid or ending mid-sequence, *err_pos = start of
 * that sequence (or the earlier error position). */
int fws_utf8_finish(const fws_utf8_state *st, uint64_t *err_pos);

/* One shot: 0 if p[0..n) is complete valid UTF-8; else 1 and *err_pos. */
int fws_utf8_validate(const uint8_t *p, size_t n, size_t *err_pos);

/* Selected implementation: "avx512" | "avx2" | "sse2" | "neon" | "scalar". */
const char *fws_utf8_isa(void);

/* Also declared in fastws_cpu.h.  0 ok; -1 unknown or unsupported on this
 * CPU.  "auto" re-detects.  Not meant to be called concurrently with
 * validation (tests and benchmarks only). */
int fws_utf8_set_isa(const char *name);

/* Accessors for bindings (the struct fields are private). */
static inline uint64_t fws_utf8_position(const fws_utf8_state *st) { return st->total; }
static inline int fws_utf8_complete(const fws_utf8_state *st) { return st->state == 0; }
static inline int fws_utf8_failed(const fws_utf8_state *st) { return st->state == 0xFFFFFFFFu; }

/* ---- internal: per-ISA bulk scanners -------------------------------------
 * Each returns the length of the longest prefix of p[0..n) made of complete,
 * valid code points.  The byte at the returned offset (if < n) starts either
 * an invalid sequence or one truncated by the end of the buffer. */
size_t fws_utf8_scan_scalar(const uint8_t *p, size_t n);
/* Nibble tables of the vector validators (defined and explained in utf8.c). */
extern const uint8_t fws_utf8_tbl_h1[16], fws_utf8_tbl_l1[16], fws_utf8_tbl_h2[16];
#if defined(__x86_64__) || defined(_M_X64)
#define FWS_UTF8_X86_64 1
size_t fws_utf8_scan_sse2(const uint8_t *p, size_t n);
size_t fws_utf8_scan_avx2(const uint8_t *p, size_t n);
size_t fws_utf8_scan_avx512(const uint8_t *p, size_t n);
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define FWS_UTF8_AARCH64 1
size_t fws_utf8_scan_neon(const uint8_t *p, size_t n);
#endif

#ifdef __cplusplus
}
#endif
#endif /* FASTWS_UTF8_H */
