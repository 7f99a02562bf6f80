/* Tests (and a small benchmark) for the UTF-8 validation kernels.
 *
 * Build and run from csrc/ (each ISA file gets only its own flags):
 *
 *   CC="gcc -std=c11 -O2 -Wall -Wextra"
 *   $CC -c utf8.c -o utf8.o
 *   $CC -c cpu.c -o cpu.o
 *   $CC -msse2 -c utf8_sse2.c -o utf8_sse2.o
 *   $CC -mavx2 -c utf8_avx2.c -o utf8_avx2.o
 *   $CC -mavx2 -mavx512f -mavx512bw -mavx512vl -mavx512vbmi -c utf8_avx512.c -o utf8_avx512.o
 *   $CC -I. tests/test_utf8.c utf8.o cpu.o utf8_sse2.o utf8_avx2.o utf8_avx512.o -o test_utf8
 *   (on AArch64: $CC -c utf8_neon.c instead of the three x86 ISA objects)
 *   ./test_utf8            # prints "N passed, 0 failed", exit status 1 on failure
 *   ./test_utf8 --bench    # GB/s per ISA: ASCII, mixed text, invalid at the end
 *
 * Add -fsanitize=address,undefined -fno-omit-frame-pointer to every line for
 * the sanitizer run.
 */
#define _POSIX_C_SOURCE 199309L
#include "fastws_cpu.h"
#include "fastws_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sanitizer builds run a smaller share of the generated cases. */
#if defined(__SANITIZE_ADDRESS__)
#define FWS_QUICK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FWS_QUICK 1
#endif
#endif
#ifndef FWS_QUICK
#define FWS_QUICK 0
#endif

static unsigned long passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            if (failed <= 30) {                                                                    \
                fprintf(stderr, "FAIL %s:%d [%s] ", __FILE__, __LINE__, fws_utf8_isa());          \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fputc('\n', stderr);                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* ---- reference: decode each code point arithmetically ------------------- */

#include "utf8_reference.h"

/* Can p[0..n) be extended into valid UTF-8?  Brute force over completions:
 * the first missing byte takes every continuation value, later ones 0x80. */
static int ref_is_prefix(const uint8_t *p, size_t n)
{
    size_t k = ref_prefix(p, n);
    if (k == n)
        return 1;
    size_t r = n - k;
    if (r >= 4)
        return 0;
    uint8_t buf[4];
    memcpy(buf, p + k, r);
    for (size_t total = r + 1; total <= 4; total++) {
        for (unsigned b = 0x80; b <= 0xBF; b++) {
            buf[r] = (uint8_t)b;
            for (size_t j = r + 1; j < total; j++)
                buf[j] = 0x80;
            if (ref_prefix(buf, total) == total)
                return 1;
        }
    }
    return 0;
}

/* ---- PRNG (splitmix64) --------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* ---- ISA list ------------------------------------------------------------ */

static const char *const isa_names[] = {"scalar", "sse2", "avx2", "avx512", "neon"};
#define N_ISA (sizeof isa_names / sizeof isa_names[0])

static size_t isa_scan(int idx, const uint8_t *p, size_t n)
{
    switch (idx) {
#ifdef FWS_UTF8_X86_64
    case 1:
        return fws_utf8_scan_sse2(p, n);
    case 2:
        return fws_utf8_scan_avx2(p, n);
    case 3:
        return fws_utf8_scan_avx512(p, n);
#endif
#ifdef FWS_UTF8_AARCH64
    case 4:
        return fws_utf8_scan_neon(p, n);
#endif
    default:
        return fws_utf8_scan_scalar(p, n);
    }
}

static int cur_isa; /* index into isa_names of the selected ISA */

/* ---- checks -------------------------------------------------------------- */

/* Expected outcome of feeding `cuts` pieces (cut points ascending, last = n). */
static void check_feeds(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts, size_t expect_prefix)
{
    fws_utf8_state st;
    fws_utf8_init(&st);
    size_t prev = 0;
    int failed_at = -1;
    uint64_t err = 0;
    for (size_t j = 0; j < ncuts; j++) {
        size_t end = cuts[j];
        uint64_t e = 12345;
        /* Copy each piece to its own heap block so that ASan catches any read
         * outside of it. */
        uint8_t *piece = malloc(end - prev + 1);
        if (end > prev)
            memcpy(piece, p + prev, end - prev);
        int r = fws_utf8_feed(&st, piece, end - prev, &e);
        free(piece);
        int expect_fail = !ref_is_prefix(p, end);
        if (failed_at < 0) {
            CHECK(r == expect_fail, "feed %zu..%zu of n=%zu: got %d want %d", prev, end, n, r, expect_fail);
            if (r && expect_fail)
                CHECK(e == expect_prefix, "feed err pos %llu want %zu (n=%zu)", (unsigned long long)e,
                      expect_prefix, n);
            if (r) {
                failed_at = (int)j;
                err = e;
            } else {
                CHECK(fws_utf8_position(&st) == end, "position %llu want %zu",
                      (unsigned long long)fws_utf8_position(&st), end);
            }
        } else {
            /* sticky error */
            CHECK(r == 1 && e == err, "sticky error: r=%d e=%llu want %llu", r, (unsigned long long)e,
                  (unsigned long long)err);
        }
        prev = end;
    }
    uint64_t e = 777;
    int r = fws_utf8_finish(&st, &e);
    int expect = expect_prefix != n;
    CHECK(r == expect, "finish got %d want %d (n=%zu)", r, expect, n);
    if (r && expect)
        CHECK(e == expect_prefix, "finish err pos %llu want %zu", (unsigned long long)e, expect_prefix);
    if (!r)
        CHECK(fws_utf8_complete(&st), "complete flag");
}

enum { SPLIT_NONE = 0, SPLIT_TWO = 1, SPLIT_THREE = 2, SPLIT_BYTES = 4, SPLIT_RANDOM = 8 };

static void check_one(const uint8_t *src, size_t n, int splits)
{
    /* exact-size heap copy: out-of-bounds reads show up under ASan */
    uint8_t *p = malloc(n ? n : 1);
    if (n)
        memcpy(p, src, n);
    size_t want = ref_prefix(p, n);

    size_t got = isa_scan(cur_isa, p, n);
    CHECK(got == want, "scan n=%zu got %zu want %zu", n, got, want);
    if (cur_isa != 0) {
        size_t s = fws_utf8_scan_scalar(p, n);
        CHECK(s == want, "scalar scan n=%zu got %zu want %zu", n, s, want);
    }

    size_t e = 99999;
    int r = fws_utf8_validate(p, n, &e);
    CHECK(r == (want != n), "validate n=%zu got %d want %d", n, r, want != n);
    if (r && want != n)
        CHECK(e == want, "validate pos n=%zu got %zu want %zu", n, e, want);

    size_t cuts[4096];
    cuts[0] = n;
    check_feeds(p, n, cuts, 1, want);
    if (splits & SPLIT_TWO) {
        for (size_t a = 0; a <= n; a++) {
            cuts[0] = a, cuts[1] = n;
            check_feeds(p, n, cuts, 2, want);
        }
    }
    if (splits & SPLIT_THREE) {
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++) {
                cuts[0] = a, cuts[1] = b, cuts[2] = n;
                check_feeds(p, n, cuts, 3, want);
            }
    }
    if ((splits & SPLIT_BYTES) && n < 4000) {
        for (size_t a = 0; a < n; a++)
            cuts[a] = a + 1;
        check_feeds(p, n, cuts, n ? n : 1, want);
    }
    if (splits & SPLIT_RANDOM) {
        size_t a = rndn(n + 1), b = rndn(n + 1);
        if (a > b) {
            size_t t = a;
            a = b, b = t;
        }
        cuts[0] = a, cuts[1] = n;
        check_feeds(p, n, cuts, 2, want);
        cuts[0] = a, cuts[1] = b, cuts[2] = n;
        check_feeds(p, n, cuts, 3, want);
    }
    free(p);
}

/* Hand-written expectations: also keep the reference honest. */
static void test_named(void)
{
    static const struct {
        const char *s;
        long pos; /* -1 = valid */
    } cases[] = {
        {"", -1},
        {"abc", -1},
        {"\x7f", -1},
        {"\x80", 0},
        {"\xbf", 0},
        {"a\x80", 1},
        {"\xc0\x80", 0}, /* overlong NUL */
        {"\xc1\xbf", 0},
        {"\xc2\x80", -1}, /* U+0080 */
        {"\xdf\xbf", -1}, /* U+07FF */
        {"\xc2", 0},
        {"\xc2\x41", 0},
        {"\xe0\x80\x80", 0}, /* overlong */
        {"\xe0\x9f\xbf", 0}, /* overlong U+07FF */
        {"\xe0\xa0\x80", -1}, /* U+0800 */
        {"\xed\x9f\xbf", -1}, /* U+D7FF */
        {"\xed\xa0\x80", 0},  /* U+D800 */
        {"\xed\xbf\xbf", 0},  /* U+DFFF */
        {"\xee\x80\x80", -1}, /* U+E000 */
        {"\xef\xbf\xbf", -1}, /* U+FFFF */
        {"\xe1\x80", 0},
        {"\xe1\x80\x41", 0},
        {"\xf0\x80\x80\x80", 0}, /* overlong */
        {"\xf0\x8f\xbf\xbf", 0}, /* overlong U+FFFF */
        {"\xf0\x90\x80\x80", -1}, /* U+10000 */
        {"\xf4\x8f\xbf\xbf", -1}, /* U+10FFFF */
        {"\xf4\x90\x80\x80", 0},  /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"\xf8\x88\x80\x80\x80", 0},
        {"\xff", 0},
        {"\xf0\x90\x80", 0},
        {"ab\xf0\x90\x80\x80\xf0\x90\x80", 6},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", -1},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *p = (const uint8_t *)cases[i].s;
        size_t n = strlen(cases[i].s);
        size_t want = cases[i].pos < 0 ? n : (size_t)cases[i].pos;
        CHECK(ref_prefix(p, n) == want, "reference disagrees on named case %zu", i);
        check_one(p, n, SPLIT_TWO | SPLIT_THREE | SPLIT_BYTES);
    }
    /* Empty input, also with a null pointer. */
    {
        fws_utf8_state st;
        uint64_t e = 5;
        size_t e2 = 5;
        fws_utf8_init(&st);
        CHECK(fws_utf8_validate(NULL, 0, &e2) == 0, "validate(NULL, 0)");
        CHECK(fws_utf8_feed(&st, NULL, 0, &e) == 0 && fws_utf8_finish(&st, &e) == 0, "feed(NULL, 0)");
        CHECK(fws_utf8_feed(&st, (const uint8_t *)"\xe2\x82", 2, &e) == 0, "partial");
        CHECK(fws_utf8_feed(&st, NULL, 0, &e) == 0 && fws_utf8_finish(&st, &e) == 1 && e == 0, "partial + empty");
        CHECK(fws_utf8_feed(&st, (const uint8_t *)"\xac", 1, &e) == 0 && fws_utf8_finish(&st, &e) == 0, "euro sign");
        CHECK(fws_utf8_position(&st) == 3, "position 3");
    }
    /* Fail fast on the second byte, without more input. */
    static const char *const early[] = {"\xf4\x90", "\xed\xa0", "\xe0\x80", "\xf0\x80", "\xc0", "\xf5"};
    for (size_t i = 0; i < sizeof early / sizeof early[0]; i++) {
        fws_utf8_state st;
        uint64_t e = 5;
        fws_utf8_init(&st);
        CHECK(fws_utf8_feed(&st, (const uint8_t *)"xy", 2, &e) == 0, "ascii");
        int r = fws_utf8_feed(&st, (const uint8_t *)early[i], strlen(early[i]), &e);
        CHECK(r == 1 && e == 2, "early fail case %zu: r=%d e=%llu", i, r, (unsigned long long)e);
        CHECK(fws_utf8_feed(&st, (const uint8_t *)"a", 1, &e) == 1 && e == 2, "sticky");
    }
    /* Valid prefixes are not errors until finish. */
    static const char *const okpre[] = {"\xf4\x8f", "\xed\x9f", "\xe0\xa0", "\xf0\x90\x80", "\xc2"};
    for (size_t i = 0; i < sizeof okpre / sizeof okpre[0]; i++) {
        fws_utf8_state st;
        uint64_t e = 5;
        fws_utf8_init(&st);
        CHECK(fws_utf8_feed(&st, (const uint8_t *)"xyz", 3, &e) == 0, "ascii");
        CHECK(fws_utf8_feed(&st, (const uint8_t *)okpre[i], strlen(okpre[i]), &e) == 0, "prefix %zu", i);
        CHECK(!fws_utf8_complete(&st), "incomplete flag");
        CHECK(fws_utf8_finish(&st, &e) == 1 && e == 3, "finish incomplete %zu", i);
    }
}

/* Every 1- and 2-byte input, every 3- and 4-byte input with interesting
 * continuation values, each at several offsets relative to the SIMD blocks. */
static void test_exhaustive_short(void)
{
    static const size_t offsets[] = {0, 31, 62, 63, 127, 1, 15, 29, 30, 32, 61, 64, 125, 190, 255, 256};
    static const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE1, 0xF0, 0xFF};
    uint8_t buf[512];
    size_t noff = FWS_QUICK ? 6 : sizeof offsets / sizeof offsets[0];
    for (size_t oi = 0; oi < noff; oi++) {
        size_t off = offsets[oi];
        memset(buf, 'a', sizeof buf);
        for (unsigned a = 0; a < 256; a++) {
            buf[off] = (uint8_t)a;
            check_one(buf, off + 1, oi < 3 ? SPLIT_TWO : 0);
            for (unsigned b = 0; b < 256; b++) {
                buf[off + 1] = (uint8_t)b;
                check_one(buf, off + 2, 0);
                if (oi < 5 && (a >= 0xE0 || (a >= 0xC0 && b >= 0xC0))) {
                    for (size_t t = 0; t < sizeof tails; t++) {
                        buf[off + 2] = tails[t];
                        check_one(buf, off + 3, 0);
                        if (a >= 0xF0) {
                            for (size_t u = 0; u < sizeof tails; u += 3) {
                                buf[off + 3] = tails[u];
                                check_one(buf, off + 4, 0);
                                /* followed by ASCII, so a SIMD block sees it mid-buffer */
                                check_one(buf, off + 40, 0);
                            }
                            buf[off + 3] = 'a';
                        }
                    }
                    buf[off + 2] = 'a';
                }
            }
            buf[off + 1] = 'a';
        }
    }
    /* All 2-byte sequences with every split (includes every lead C0..FF). */
    for (unsigned a = 0xC0; a < 256; a++)
        for (unsigned b = 0x70; b < 0xD0; b++) {
            uint8_t s[6] = {'x', (uint8_t)a, (uint8_t)b, 0xBF, 0x80, 'y'};
            check_one(s, 6, SPLIT_TWO | SPLIT_THREE | SPLIT_BYTES);
            check_one(s, 3, SPLIT_TWO | SPLIT_THREE);
        }
}

/* Random text built from a mix of code point classes. */
static size_t put_cp(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t random_cp(int style)
{
    static const uint32_t edges[] = {0x0, 0x7F, 0x80, 0x7FF, 0x800, 0xFFF, 0x1000, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x3FFFF, 0x40000, 0xFFFFF, 0x100000, 0x10FFFF};
    unsigned k = (unsigned)rndn(style == 0 ? 100 : 10);
    if (k < 5)
        return edges[rndn(sizeof edges / sizeof edges[0])];
    if (k < 7)
        return 0x80 + (uint32_t)rndn(0x780);
    if (k < 8) {
        uint32_t c = 0x800 + (uint32_t)rndn(0x10000 - 0x800);
        return (c >= 0xD800 && c <= 0xDFFF) ? 0x4E00 : c;
    }
    if (k < 9)
        return 0x10000 + (uint32_t)rndn(0x100000);
    return (uint32_t)rndn(0x80);
}

static size_t random_text(uint8_t *o, size_t target, int style)
{
    size_t n = 0;
    while (n + 4 <= target)
        n += put_cp(o + n, random_cp(style));
    while (n < target)
        o[n++] = (uint8_t)rndn(0x80);
    return n;
}

static void mutate(uint8_t *p, size_t *n, size_t cap)
{
    static const uint8_t special[] = {0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x9F, 0xA0, 0x8F, 0x90, 0x00};
    size_t len = *n;
    switch (rndn(5)) {
    case 0: /* overwrite a byte */
        if (len)
            p[rndn(len)] = rndn(2) ? special[rndn(sizeof special)] : (uint8_t)rnd();
        break;
    case 1: /* delete a byte */
        if (len) {
            size_t i = rndn(len);
            memmove(p + i, p + i + 1, len - i - 1);
            *n = len - 1;
        }
        break;
    case 2: /* insert a byte */
        if (len < cap) {
            size_t i = rndn(len + 1);
            memmove(p + i + 1, p + i, len - i);
            p[i] = special[rndn(sizeof special)];
            *n = len + 1;
        }
        break;
    case 3: /* truncate */
        *n = rndn(len + 1);
        break;
    default: /* leave valid */
        break;
    }
}

static void test_random(unsigned long count)
{
    uint8_t buf[1200];
    for (unsigned long i = 0; i < count; i++) {
        size_t target;
        switch (rndn(4)) {
        case 0:
            target = rndn(40);
            break;
        case 1: /* around block edges */
        {
            static const size_t e[] = {32, 64, 128, 256, 512};
            target = e[rndn(5)] + rndn(9) - 4;
            break;
        }
        case 2:
            target = rndn(300);
            break;
        default:
            target = rndn(1100);
            break;
        }
        size_t n = random_text(buf, target, (int)rndn(2));
        int muts = (int)rndn(3);
        for (int m = 0; m < muts; m++)
            mutate(buf, &n, sizeof buf);
        check_one(buf, n, n <= 24 ? (SPLIT_TWO | SPLIT_THREE) : (n <= 160 && i % 16 == 0) ? SPLIT_TWO : SPLIT_RANDOM);
    }
}

/* Large buffers: long ASCII or mixed runs with one error anywhere. */
static void test_large(void)
{
    size_t cap = 70000;
    uint8_t *buf = malloc(cap);
    for (int round = 0; round < (FWS_QUICK ? 12 : 60); round++) {
        size_t n = 1000 + rndn(cap - 1000);
        if (round % 2)
            memset(buf, 'q', n);
        else
            n = random_text(buf, n, 1);
        check_one(buf, n, SPLIT_RANDOM);
        for (int e = 0; e < 8; e++) {
            size_t at = rndn(n);
            uint8_t saved = buf[at];
            buf[at] = (uint8_t)(0x80 | rnd());
            check_one(buf, n, SPLIT_RANDOM);
            buf[at] = saved;
        }
        check_one(buf, n - rndn(4), SPLIT_RANDOM);
    }
    free(buf);
}

/* ---- benchmark ----------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double bench_one(const uint8_t *p, size_t n)
{
    double best = 1e30;
    /* many short runs, keep the best: robust against a busy machine */
    size_t reps = (size_t)(4u << 20) / n + 1;
    volatile size_t sink = 0;
    for (int r = 0; r < 200; r++) {
        double t0 = now_s();
        for (size_t k = 0; k < reps; k++) {
            size_t e = 0;
            sink += (size_t)fws_utf8_validate(p, n, &e) + e;
        }
        double t = (now_s() - t0) / (double)reps;
        if (t < best)
            best = t;
    }
    (void)sink;
    return (double)n / best / 1e9;
}

/* ~30% non-ASCII bytes: Latin-1 supplement, Cyrillic, CJK and emoji. */
static size_t mixed_text(uint8_t *o, size_t n)
{
    size_t i = 0, nonascii = 0;
    while (i + 4 <= n) {
        if (nonascii * 10 < i * 3) {
            uint32_t cp;
            switch (rndn(4)) {
            case 0:
                cp = 0xA0 + (uint32_t)rndn(0x60);
                break;
            case 1:
                cp = 0x410 + (uint32_t)rndn(0x40);
                break;
            case 2:
                cp = 0x4E00 + (uint32_t)rndn(0x5000);
                break;
            default:
                cp = 0x1F600 + (uint32_t)rndn(0x40);
                break;
            }
            size_t k = put_cp(o + i, cp);
            i += k, nonascii += k;
        } else {
            o[i++] = (uint8_t)(' ' + rndn(95));
        }
    }
    while (i < n)
        o[i++] = 'z';
    return i;
}

static void bench(void)
{
    static const size_t sizes[] = {100, 1024, 65536, 1u << 20};
    uint8_t *ascii = malloc(1u << 20), *mixed = malloc(1u << 20), *bad = malloc(1u << 20);
    for (size_t i = 0; i < (1u << 20); i++)
        ascii[i] = (uint8_t)(' ' + i % 95);
    mixed_text(mixed, 1u << 20);
    for (size_t i = 0; i < N_ISA; i++) {
        if (fws_utf8_set_isa(isa_names[i]) != 0)
            continue;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            size_t nm = n;
            while (nm > 0 && (mixed[nm] & 0xC0) == 0x80)
                nm--; /* cut at a code point boundary */
            memcpy(bad, mixed, nm);
            bad[nm - 1] = 0xFF;
            double a = bench_one(ascii, n), m = bench_one(mixed, nm), b = bench_one(bad, nm);
            printf("%-7s %8zu B  ascii %6.2f GB/s  mixed %6.2f GB/s  invalid-at-end %6.2f GB/s\n",
                   isa_names[i], n, a, m, b);
        }
    }
    fws_utf8_set_isa("auto");
    free(ascii);
    free(mixed);
    free(bad);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        bench();
        return 0;
    }
    unsigned long nrand = FWS_QUICK ? 30000 : 100000; /* per ISA */
    if (argc > 1)
        nrand = strtoul(argv[1], NULL, 10);
    for (size_t i = 0; i < N_ISA; i++) {
        if (fws_utf8_set_isa(isa_names[i]) != 0) {
            printf("%s: not available here, skipped\n", isa_names[i]);
            continue;
        }
        cur_isa = (int)i;
        CHECK(strcmp(fws_utf8_isa(), isa_names[i]) == 0, "set_isa(%s)", isa_names[i]);
        unsigned long before = failed;
        rng_state = 0x9E3779B97F4A7C15ull + i;
        test_named();
        test_exhaustive_short();
        test_random(nrand);
        test_large();
        printf("%s: %s\n", isa_names[i], failed == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    CHECK(fws_utf8_set_isa("bogus") == -1, "unknown isa");
    CHECK(fws_utf8_set_isa("auto") == 0, "auto");
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed ? 1 : 0;
}
