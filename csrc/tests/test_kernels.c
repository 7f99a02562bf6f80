/* Tests for the masking and frame-header kernels.
 *
 * Every masking kernel this CPU can run is compared with a byte-at-a-time
 * reference for lengths 0..300 and some large ones, every phase, every
 * destination misalignment 0..63 (and every source/destination pair for a
 * few lengths), in place and copying. Buffers sit between guard bytes so an
 * out-of-bounds write shows up; a second pass uses exact-size heap blocks so
 * AddressSanitizer sees any out-of-bounds read. Copies around the streaming
 * threshold, set to FWS_MASK_STREAM_FLOOR whatever the CPU's cache, exercise
 * the non-temporal store path.
 *
 * Build and run with `make -C csrc test` (or `make -C csrc test-sanitize`).
 * Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include "fastws_cpu.h"
#include "fastws_frame.h"
#include "fastws_mask.h"
#include "mask_internal.h" /* FWS_MASK_STREAM_FLOOR, fws_mask_set_stream_min */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            if (failed < 20) {                                                                     \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fputc('\n', stderr);                                                               \
            }                                                                                      \
            failed++;                                                                              \
        }                                                                                          \
    } while (0)

typedef void (*mask_fn)(uint8_t *, const uint8_t *, size_t, const uint8_t *, unsigned);

typedef struct {
    const char *name;
    mask_fn fn;
    unsigned needs;
} kernel;

static const kernel kernels[] = {
    {"scalar", fws_mask_scalar, 0},
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
    {"sse2", fws_mask_sse2, FWS_CPU_SSE2},
    {"avx2", fws_mask_avx2, FWS_CPU_AVX2},
    {"avx512", fws_mask_avx512, FWS_CPU_AVX512BW},
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    {"neon", fws_mask_neon, FWS_CPU_NEON},
#endif
    {"dispatch", fws_mask, 0},
};

static void reference(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)(src[i] ^ key[(phase + i) & 3]);
}

static uint32_t rng_state = 0x12345678u;
static uint8_t rnd8(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)(rng_state >> 11);
}

#define GUARD 64
#define ALIGN 64
#define CANARY 0xA5

/* One check: kernel on a buffer at dst_off/src_off (in place when src_off < 0). */
static int run_one(const kernel *k, size_t n, unsigned phase, size_t dst_off, long src_off,
                   const uint8_t key[4], uint8_t *arena_dst, uint8_t *arena_src,
                   const uint8_t *data, uint8_t *expect)
{
    /* arena layout: [GUARD][ALIGN slack][n bytes][GUARD] on a 64-aligned base */
    const size_t span = GUARD + ALIGN + n + GUARD;
    memset(arena_dst, CANARY, span);
    uint8_t *dst = arena_dst + GUARD + dst_off;
    const uint8_t *src;
    memcpy(dst, data, n);
    reference(expect, data, n, key, phase);
    if (src_off < 0) {
        src = dst;
    } else {
        memset(arena_src, CANARY, span);
        memcpy(arena_src + GUARD + (size_t)src_off, data, n);
        memset(dst, 0, n);
        src = arena_src + GUARD + (size_t)src_off;
    }
    k->fn(dst, src, n, key, phase);
    int ok = memcmp(dst, expect, n) == 0;
    for (size_t i = 0; i < span; i++) {
        uint8_t *p = arena_dst + i;
        if (p >= dst && p < dst + n)
            continue;
        if (*p != CANARY) {
            ok = 0;
            break;
        }
    }
    if (src_off >= 0 && memcmp(src, data, n) != 0)
        ok = 0; /* source modified */
    return ok;
}

static uint8_t *aligned_arena(size_t size)
{
    /* 64-aligned within a malloc block: offsets are then exact. */
    uint8_t *raw = malloc(size + 64);
    if (!raw) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return raw;
}

static uint8_t *align64(uint8_t *p)
{
    return p + ((64 - ((uintptr_t)p & 63)) & 63);
}

/* Guarded source and destination arenas, random input and the expected output
 * buffer for lengths up to max_n. */
typedef struct {
    uint8_t *raw_d, *raw_s, *arena_d, *arena_s, *data, *expect;
} mask_arenas;

static void arenas_init(mask_arenas *a, size_t max_n)
{
    const size_t span = GUARD + ALIGN + max_n + GUARD;
    a->raw_d = aligned_arena(span);
    a->raw_s = aligned_arena(span);
    a->arena_d = align64(a->raw_d);
    a->arena_s = align64(a->raw_s);
    a->data = malloc(max_n);
    a->expect = malloc(max_n);
    if (!a->data || !a->expect)
        exit(2);
    for (size_t i = 0; i < max_n; i++)
        a->data[i] = rnd8();
}

static void arenas_free(mask_arenas *a)
{
    free(a->raw_d);
    free(a->raw_s);
    free(a->data);
    free(a->expect);
}

static void test_mask_kernel(const kernel *k)
{
    static const size_t big[] = {511, 512, 513, 1000, 1023, 1024, 1025, 4095, 4096, 4097,
                                 16384 + 7, 65536 + 13, 100003};
    mask_arenas a;
    arenas_init(&a, 100003);
    uint8_t *arena_d = a.arena_d, *arena_s = a.arena_s, *data = a.data, *expect = a.expect;
    uint8_t key[4];
    unsigned long before = failed;

    for (size_t n = 0; n <= 300; n++) {
        for (unsigned phase = 0; phase < 4; phase++) {
            for (int j = 0; j < 4; j++)
                key[j] = rnd8();
            for (size_t off = 0; off < 64; off++) {
                CHECK(run_one(k, n, phase, off, -1, key, arena_d, arena_s, data, expect),
                      "%s in place n=%zu phase=%u off=%zu", k->name, n, phase, off);
                long src_offs[4] = {0, 1, 33, (long)((off * 7 + n) & 63)};
                for (int s = 0; s < 4; s++)
                    CHECK(run_one(k, n, phase, off, src_offs[s], key, arena_d, arena_s, data, expect),
                          "%s copy n=%zu phase=%u dst_off=%zu src_off=%ld", k->name, n, phase, off,
                          src_offs[s]);
            }
        }
    }
    /* every src/dst misalignment pair for a few lengths */
    static const size_t pair_lengths[] = {1, 7, 15, 16, 31, 33, 64, 100, 129, 257};
    for (size_t li = 0; li < sizeof pair_lengths / sizeof *pair_lengths; li++) {
        size_t n = pair_lengths[li];
        for (size_t d = 0; d < 64; d++)
            for (long s = 0; s < 64; s++) {
                unsigned phase = (unsigned)(d + (size_t)s) & 3;
                CHECK(run_one(k, n, phase, d, s, key, arena_d, arena_s, data, expect),
                      "%s pair n=%zu phase=%u dst_off=%zu src_off=%ld", k->name, n, phase, d, s);
            }
    }
    for (size_t bi = 0; bi < sizeof big / sizeof *big; bi++) {
        size_t n = big[bi];
        for (unsigned phase = 0; phase < 4; phase++)
            for (size_t off = 0; off < 64; off += 9) {
                CHECK(run_one(k, n, phase, off, -1, key, arena_d, arena_s, data, expect),
                      "%s big in place n=%zu phase=%u off=%zu", k->name, n, phase, off);
                CHECK(run_one(k, n, phase, off, (long)((off + 5) & 63), key, arena_d, arena_s,
                              data, expect),
                      "%s big copy n=%zu phase=%u off=%zu", k->name, n, phase, off);
            }
    }
    /* Exact-size heap blocks: with AddressSanitizer any read or write past
     * either end is reported. */
    for (size_t n = 0; n <= 300; n++) {
        uint8_t *s = malloc(n ? n : 1), *d = malloc(n ? n : 1);
        if (!s || !d)
            exit(2);
        memcpy(s, data, n);
        reference(expect, data, n, key, (unsigned)n & 3);
        k->fn(d, s, n, key, (unsigned)n & 3);
        CHECK(memcmp(d, expect, n) == 0, "%s exact copy n=%zu", k->name, n);
        k->fn(s, s, n, key, (unsigned)n & 3);
        CHECK(memcmp(s, expect, n) == 0, "%s exact in place n=%zu", k->name, n);
        free(s);
        free(d);
    }
    /* Chunked continuation: phase of the next chunk = (phase + len) % 4. */
    {
        size_t n = 1000, pos = 0;
        unsigned phase = 0;
        uint8_t *buf = malloc(n);
        if (!buf)
            exit(2);
        memcpy(buf, data, n);
        reference(expect, data, n, key, 0);
        static const size_t chunks[] = {1, 2, 3, 5, 17, 64, 100, 3, 255, 550};
        for (size_t c = 0; pos < n; c++) {
            size_t len = chunks[c % 10];
            if (len > n - pos)
                len = n - pos;
            k->fn(buf + pos, buf + pos, len, key, phase);
            phase = (unsigned)(phase + len) & 3;
            pos += len;
        }
        CHECK(memcmp(buf, expect, n) == 0, "%s chunked", k->name);
        free(buf);
    }
    printf("  mask %-8s %s\n", k->name, failed == before ? "ok" : "FAILED");
    arenas_free(&a);
}

/* Lengths around the streaming threshold (set to FWS_MASK_STREAM_FLOOR): copies
 * stream past the caches from there on, in place never does. */
static void test_mask_stream(const kernel *k)
{
    const size_t sizes[] = {FWS_MASK_STREAM_FLOOR - 1, FWS_MASK_STREAM_FLOOR,
                            FWS_MASK_STREAM_FLOOR + 3 * 64 + 37};
    static const size_t dst_offs[] = {0, 1, 17, 63};
    static const long src_offs[] = {0, 5, 63, 32};
    mask_arenas a;
    arenas_init(&a, sizes[2]);
    uint8_t *arena_d = a.arena_d, *arena_s = a.arena_s, *data = a.data, *expect = a.expect;
    uint8_t key[4];
    for (int j = 0; j < 4; j++)
        key[j] = rnd8();
    unsigned long before = failed;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (unsigned c = 0; c < 4; c++) {
            size_t n = sizes[si];
            CHECK(run_one(k, n, c, dst_offs[c], src_offs[c], key, arena_d, arena_s, data, expect),
                  "%s stream copy n=%zu phase=%u dst_off=%zu src_off=%ld", k->name, n, c,
                  dst_offs[c], src_offs[c]);
            CHECK(run_one(k, n, c, dst_offs[c], -1, key, arena_d, arena_s, data, expect),
                  "%s stream in place n=%zu phase=%u off=%zu", k->name, n, c, dst_offs[c]);
        }
    printf("  mask %-8s large copies %s\n", k->name, failed == before ? "ok" : "FAILED");
    arenas_free(&a);
}

/* Copies with every distance between dst and src modulo 4 KiB that picks a
 * direction (see fws_copy_backward), from one block so the distance is exact:
 * [src region][gap][GUARD][dst region][GUARD]. */
static void test_mask_copy_direction(const kernel *k)
{
    static const size_t lengths[] = {33, 64, 65, 127, 255, 256, 257, 1000, 4096 + 17, 65536 + 5};
    static const size_t deltas[] = {0, 1, 16, 63, 64, 144, 496, 1000, 2047, 2048, 2049, 3000, 4032, 4095};
    const size_t max_n = 65536 + 5, region = max_n + 4096 + 2 * GUARD;
    uint8_t *raw = malloc(2 * region + 8192);
    uint8_t *data = malloc(max_n), *expect = malloc(max_n);
    if (!raw || !data || !expect)
        exit(2);
    for (size_t i = 0; i < max_n; i++)
        data[i] = rnd8();
    uint8_t key[4];
    for (int j = 0; j < 4; j++)
        key[j] = rnd8();
    unsigned long before = failed;
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
        for (size_t di = 0; di < sizeof deltas / sizeof *deltas; di++)
            for (unsigned c = 0; c < 4; c++) {
                const size_t n = lengths[li], src_off = c * 21;
                uint8_t *src = align64(raw) + src_off;
                /* the first 4 KiB multiple past src + n + GUARD, plus the distance */
                const size_t gap = ((n + GUARD + 4095) & ~(size_t)4095) + deltas[di];
                uint8_t *dst = src + gap;
                memset(dst - GUARD, CANARY, n + 2 * GUARD);
                memcpy(src, data, n);
                reference(expect, data, n, key, c);
                k->fn(dst, src, n, key, c);
                int ok = memcmp(dst, expect, n) == 0 && memcmp(src, data, n) == 0;
                for (size_t g = 1; g <= GUARD; g++)
                    ok = ok && dst[-(long)g] == CANARY && dst[n + g - 1] == CANARY;
                CHECK(ok, "%s copy n=%zu dst-src=%zu (mod 4096: %zu) phase=%u", k->name, n, gap,
                      deltas[di], c);
            }
    printf("  mask %-8s copy directions %s\n", k->name, failed == before ? "ok" : "FAILED");
    free(raw);
    free(data);
    free(expect);
}

static void test_isa_selection(void)
{
    unsigned f = fws_cpu_features();
    CHECK(fws_mask_set_isa("scalar") == 0, "scalar must always be selectable");
    CHECK(strcmp(fws_mask_isa(), "scalar") == 0, "isa after set scalar: %s", fws_mask_isa());
    CHECK(fws_mask_set_isa("bogus") == -1, "unknown isa accepted");
    CHECK(fws_mask_set_isa(NULL) == -1, "NULL isa accepted");
    CHECK(fws_mask_set_isa("avx2") == ((f & FWS_CPU_AVX2) ? 0 : -1), "avx2 selection");
    CHECK(fws_mask_set_isa("avx512") == ((f & FWS_CPU_AVX512BW) ? 0 : -1), "avx512 selection");
    CHECK(fws_mask_set_isa("neon") == ((f & FWS_CPU_NEON) ? 0 : -1), "neon selection");
    CHECK(fws_mask_set_isa("auto") == 0, "auto");
    CHECK((f & FWS_CPU_AVX512VBMI) == 0 || (f & FWS_CPU_AVX512BW), "VBMI implies AVX512BW");
    CHECK((f & FWS_CPU_AVX512BW) == 0 || (f & FWS_CPU_AVX2), "AVX512BW implies AVX2");
    printf("  cpu features 0x%x, mask isa %s\n", f, fws_mask_isa());
    size_t llc = fws_cpu_llc_bytes(), stream_min = fws_mask_stream_min();
    CHECK(stream_min >= FWS_MASK_STREAM_FLOOR && stream_min >= llc / 4,
          "stream threshold %zu, last-level cache %zu", stream_min, llc);
    printf("  last-level cache %zu KiB, copies stream from %zu KiB\n", llc >> 10,
           stream_min >> 10);
}

/* ---- frame headers ------------------------------------------------------ */

static void test_header_roundtrip(void)
{
    static const uint64_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, 0xffffffffull,
                                       0x100000000ull, 0x7fffffffffffffffull};
    static const size_t expect_len[] = {2, 2, 2, 4, 4, 4, 10, 10, 10, 10, 10};
    const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++)
        for (int fin = 0; fin < 2; fin++)
            for (unsigned rsv = 0; rsv < 8; rsv++)
                for (unsigned op = 0; op < 16; op++)
                    for (int m = 0; m < 2; m++) {
                        uint8_t out[14 + 1];
                        memset(out, CANARY, sizeof out);
                        size_t hl = fws_header_encode(out, fin, rsv, op, lengths[li], m ? key : NULL);
                        size_t want = expect_len[li] + (m ? 4u : 0u);
                        CHECK(hl == want, "encode len %zu != %zu", hl, want);
                        CHECK(out[14] == CANARY, "encode wrote past 14 bytes");
                        fws_header h;
                        int r = fws_header_decode(out, hl, &h);
                        CHECK(r == (int)hl && h.header_len == hl, "decode returned %d", r);
                        CHECK(h.fin == fin && h.rsv == rsv && h.opcode == op && h.masked == m &&
                                  h.length == lengths[li],
                              "roundtrip mismatch len=%llu", (unsigned long long)lengths[li]);
                        if (m)
                            CHECK(memcmp(h.mask, key, 4) == 0, "mask mismatch");
                        /* every truncation needs more bytes */
                        for (size_t cut = 0; cut < hl; cut++)
                            CHECK(fws_header_decode(out, cut, &h) == 0, "truncated at %zu", cut);
                        /* trailing payload bytes do not matter */
                        uint8_t longer[32];
                        memset(longer, 0xff, sizeof longer);
                        memcpy(longer, out, hl);
                        CHECK(fws_header_decode(longer, sizeof longer, &h) == (int)hl, "with payload");
                    }
}

static void test_header_cases(void)
{
    fws_header h;
    /* RFC 6455 5.7 examples */
    const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    CHECK(fws_header_decode(hello, sizeof hello, &h) == 2 && h.fin == 1 && h.opcode == 1 &&
              h.length == 5 && !h.masked,
          "unmasked text");
    const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK(fws_header_decode(masked, sizeof masked, &h) == 6 && h.masked && h.mask[0] == 0x37 &&
              h.mask[3] == 0x3d && h.length == 5,
          "masked text");
    uint8_t payload[5];
    fws_mask(payload, masked + 6, 5, h.mask, 0);
    CHECK(memcmp(payload, "Hello", 5) == 0, "unmask RFC example");
    const uint8_t frag[] = {0x01, 0x03};
    CHECK(fws_header_decode(frag, 2, &h) == 2 && h.fin == 0 && h.opcode == 1, "fragment");
    const uint8_t rsv[] = {0xf2, 0x00};
    CHECK(fws_header_decode(rsv, 2, &h) == 2 && h.rsv == 7 && h.opcode == 2 && h.fin, "rsv bits");
    const uint8_t len256[] = {0x82, 0x7e, 0x01, 0x00};
    CHECK(fws_header_decode(len256, 4, &h) == 4 && h.length == 256, "16-bit length");
    const uint8_t len64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK(fws_header_decode(len64k, 10, &h) == 10 && h.length == 65536, "64-bit length");
    /* most significant bit of the 64-bit length */
    uint8_t msb[] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0};
    CHECK(fws_header_decode(msb, 10, &h) == -1, "MSB set must be rejected");
    msb[2] = 0xff;
    CHECK(fws_header_decode(msb, 10, &h) == -1, "MSB set (all ones) must be rejected");
    CHECK(fws_header_decode(msb, 9, &h) == 0, "MSB set but incomplete: need more bytes");
    uint8_t msbm[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK(fws_header_decode(msbm, 14, &h) == -1, "MSB set, masked");
    /* non-minimal encodings decode as they are (protocol checks elsewhere) */
    const uint8_t nonmin[] = {0x82, 0x7e, 0x00, 0x05};
    CHECK(fws_header_decode(nonmin, 4, &h) == 4 && h.length == 5, "non-minimal 16-bit");
    CHECK(fws_header_decode(hello, 0, &h) == 0 && fws_header_decode(hello, 1, &h) == 0, "n < 2");
    /* encode: exact bytes */
    uint8_t out[14];
    CHECK(fws_header_encode(out, 1, 0, 1, 5, NULL) == 2 && out[0] == 0x81 && out[1] == 0x05,
          "encode small");
    CHECK(fws_header_encode(out, 0, 4, 2, 126, NULL) == 4 && out[0] == 0x42 && out[1] == 126 &&
              out[2] == 0 && out[3] == 126,
          "encode 126");
    CHECK(fws_header_encode(out, 1, 0, 2, 65536, NULL) == 10 && out[1] == 127 && out[2] == 0 &&
              out[7] == 1 && out[8] == 0 && out[9] == 0,
          "encode 65536");
    const uint8_t key[4] = {1, 2, 3, 4};
    CHECK(fws_header_encode(out, 1, 0, 9, 0, key) == 6 && out[0] == 0x89 && out[1] == 0x80 &&
              out[5] == 4,
          "encode masked ping");
}

int main(void)
{
    printf("fastws kernel tests\n");
    test_isa_selection();
    unsigned f = fws_cpu_features();
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; i++) {
        if ((kernels[i].needs & f) != kernels[i].needs) {
            printf("  mask %-8s skipped (not supported by this CPU)\n", kernels[i].name);
            continue;
        }
        test_mask_kernel(&kernels[i]);
        test_mask_copy_direction(&kernels[i]);
        fws_mask_set_stream_min(FWS_MASK_STREAM_FLOOR);
        test_mask_stream(&kernels[i]);
        fws_mask_set_stream_min(0);
    }
    test_header_roundtrip();
    test_header_cases();
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed ? 1 : 0;
}
