/* Fuzz harness for the UTF-8 kernels: every available ISA against the scalar
 * scanner and against a plain reference decoder, one-shot and incremental.
 *
 * libFuzzer (clang), from the repository root:
 *   CC="clang -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -Icsrc"
 *   $CC -c csrc/utf8.c -o /tmp/utf8.o && $CC -c csrc/cpu.c -o /tmp/cpu.o
 *   $CC -msse2 -c csrc/utf8_sse2.c -o /tmp/utf8_sse2.o
 *   $CC -mavx2 -c csrc/utf8_avx2.c -o /tmp/utf8_avx2.o
 *   $CC -mavx2 -mavx512f -mavx512bw -mavx512vl -mavx512vbmi -c csrc/utf8_avx512.c -o /tmp/utf8_avx512.o
 *   $CC fuzz/fuzz_utf8.c /tmp/utf8*.o /tmp/cpu.o -o fuzz_utf8 && ./fuzz_utf8 -max_len=4096
 *
 * Without libFuzzer (any C11 compiler), add -DFWS_FUZZ_MAIN: the program then
 * runs each file named on the command line, or N random inputs
 * (./fuzz_utf8 --random N).
 *
 * Input layout: byte 0 and 1 choose two split points for the incremental
 * check; the rest is the text.
 */
#include "fastws_cpu.h"
#include "fastws_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../csrc/tests/utf8_reference.h"

static void fail(const char *what, size_t got, size_t want)
{
    fprintf(stderr, "mismatch [%s] %s: got %zu want %zu\n", fws_utf8_isa(), what, got, want);
    abort();
}

static size_t scan_isa(const char *isa, const uint8_t *p, size_t n)
{
#ifdef FWS_UTF8_X86_64
    if (strcmp(isa, "sse2") == 0)
        return fws_utf8_scan_sse2(p, n);
    if (strcmp(isa, "avx2") == 0)
        return fws_utf8_scan_avx2(p, n);
    if (strcmp(isa, "avx512") == 0)
        return fws_utf8_scan_avx512(p, n);
#endif
#ifdef FWS_UTF8_AARCH64
    if (strcmp(isa, "neon") == 0)
        return fws_utf8_scan_neon(p, n);
#endif
    (void)isa;
    return fws_utf8_scan_scalar(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const isas[] = {"scalar", "sse2", "avx2", "avx512", "neon"};
    if (size < 2)
        return 0;
    size_t n = size - 2;
    uint8_t *p = malloc(n ? n : 1); /* exact size: over-reads are caught */
    memcpy(p, data + 2, n);
    size_t a = n ? data[0] % (n + 1) : 0, b = n ? data[1] % (n + 1) : 0;
    if (a > b) {
        size_t t = a;
        a = b, b = t;
    }
    size_t want = ref_prefix(p, n);
    size_t scalar = fws_utf8_scan_scalar(p, n);
    if (scalar != want)
        fail("scalar scan", scalar, want);

    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (fws_utf8_set_isa(isas[k]) != 0)
            continue;
        size_t got = scan_isa(isas[k], p, n);
        if (got != want)
            fail("scan", got, want);
        size_t e = 0;
        int r = fws_utf8_validate(p, n, &e);
        if (r != (want != n) || (r && e != want))
            fail("validate", r ? e : n, want);

        /* three feeds, then finish */
        fws_utf8_state st;
        fws_utf8_init(&st);
        uint64_t pos = 0;
        size_t cuts[3] = {a, b, n}, prev = 0;
        int bad = 0;
        for (int j = 0; j < 3 && !bad; j++) {
            bad = fws_utf8_feed(&st, p + prev, cuts[j] - prev, &pos);
            prev = cuts[j];
        }
        if (!bad)
            bad = fws_utf8_finish(&st, &pos);
        if (bad != (want != n) || (bad && pos != want))
            fail("incremental", bad ? (size_t)pos : n, want);
    }
    fws_utf8_set_isa("auto");
    free(p);
    return 0;
}

#ifdef FWS_FUZZ_MAIN
static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--random") == 0) {
        unsigned long count = strtoul(argv[2], NULL, 10);
        static const uint8_t pool[] = {'a', 0x80, 0xBF, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xA0, 0x9F, 0x90, 0x8F, 0xC0, 0xF5, 0xFF, 0x00};
        uint8_t buf[2 + 700];
        for (unsigned long i = 0; i < count; i++) {
            size_t n = 2 + (size_t)(next() % 700);
            int dense = (int)(next() % 8);
            for (size_t j = 0; j < n; j++) {
                uint64_t r = next();
                buf[j] = (r % 8 < (uint64_t)dense) ? pool[(r >> 8) % sizeof pool] : (uint8_t)('a' + (r >> 8) % 26);
            }
            LLVMFuzzerTestOneInput(buf, n);
        }
        printf("%lu random inputs ok\n", count);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
#endif
