/* Portable masking kernel and the runtime dispatcher. */
#include "fastws_mask.h"
#include "fastws_cpu.h"
#include "mask_internal.h"

#include <string.h>

void fws_mask_scalar(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    phase &= 3;
    if (n < 16) {
        fws_mask_small(dst, src, n, key, phase);
        return;
    }
    const uint64_t k = fws_key64(key, phase);
    size_t i = 0;
    /* Eight bytes is a multiple of the key period, so k never rotates. */
    for (; i + 32 <= n; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= k;
        b ^= k;
        c ^= k;
        d ^= k;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= k;
        memcpy(dst + i, &a, 8);
    }
    if (i + 4 <= n) {
        uint32_t a, k32;
        memcpy(&k32, &k, 4); /* first four bytes in memory order */
        memcpy(&a, src + i, 4);
        a ^= k32;
        memcpy(dst + i, &a, 4);
        i += 4;
    }
    for (; i < n; i++)
        dst[i] = (uint8_t)(src[i] ^ key[(phase + i) & 3]);
}

/* ---- dispatch ----------------------------------------------------------- */

typedef void (*fws_mask_fn)(uint8_t *, const uint8_t *, size_t, const uint8_t *, unsigned);

typedef struct {
    const char *name;
    fws_mask_fn fn;
    unsigned needs; /* fws_cpu_features() bits; 0 = always */
} fws_mask_impl;

/* Best first. */
static const fws_mask_impl fws_mask_impls[] = {
#ifdef FWS_ARCH_X86
    {"avx512", fws_mask_avx512, FWS_CPU_AVX512BW},
    {"avx2", fws_mask_avx2, FWS_CPU_AVX2},
    {"sse2", fws_mask_sse2, FWS_CPU_SSE2},
#endif
#ifdef FWS_ARCH_ARM64
    {"neon", fws_mask_neon, FWS_CPU_NEON},
#endif
    {"scalar", fws_mask_scalar, 0},
};
#define FWS_N_IMPLS (sizeof fws_mask_impls / sizeof fws_mask_impls[0])

/* Index into fws_mask_impls + 1; 0 = not resolved yet. Stored and loaded
 * atomically (relaxed) so concurrent first use or re-selection is not a
 * data race; every value ever stored is a valid kernel. */
#if defined(_MSC_VER) && !defined(__clang__)
static volatile long fws_mask_sel = 0;
#define SEL_LOAD() ((unsigned)fws_mask_sel)
#define SEL_STORE(v) (fws_mask_sel = (long)(v))
#elif !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
static _Atomic unsigned fws_mask_sel = 0;
#define SEL_LOAD() atomic_load_explicit(&fws_mask_sel, memory_order_relaxed)
#define SEL_STORE(v) atomic_store_explicit(&fws_mask_sel, (unsigned)(v), memory_order_relaxed)
#else
static volatile unsigned fws_mask_sel = 0;
#define SEL_LOAD() (fws_mask_sel)
#define SEL_STORE(v) (fws_mask_sel = (unsigned)(v))
#endif

static unsigned fws_mask_best(void)
{
    unsigned feat = fws_cpu_features();
    for (unsigned i = 0; i < FWS_N_IMPLS; i++)
        if ((fws_mask_impls[i].needs & feat) == fws_mask_impls[i].needs)
            return i + 1;
    return FWS_N_IMPLS; /* scalar */
}

#if defined(_MSC_VER) && !defined(__clang__)
#define FWS_NOINLINE __declspec(noinline)
#else
#define FWS_NOINLINE __attribute__((noinline))
#endif

/* Kept out of line so fws_mask stays a leaf with a tail call. */
static FWS_NOINLINE unsigned fws_mask_resolve_slow(void)
{
    unsigned s = fws_mask_best();
    SEL_STORE(s);
    return s;
}

static inline unsigned fws_mask_resolve(void)
{
    unsigned s = SEL_LOAD();
    return s ? s : fws_mask_resolve_slow();
}

/* The streaming threshold (see mask_internal.h); 0 = not computed yet. */
#if defined(_MSC_VER) && !defined(__clang__)
static volatile size_t fws_stream_min = 0;
#define STREAM_LOAD() (fws_stream_min)
#define STREAM_STORE(v) (fws_stream_min = (v))
#elif !defined(__STDC_NO_ATOMICS__)
static _Atomic size_t fws_stream_min = 0;
#define STREAM_LOAD() atomic_load_explicit(&fws_stream_min, memory_order_relaxed)
#define STREAM_STORE(v) atomic_store_explicit(&fws_stream_min, (v), memory_order_relaxed)
#else
static volatile size_t fws_stream_min = 0;
#define STREAM_LOAD() (fws_stream_min)
#define STREAM_STORE(v) (fws_stream_min = (v))
#endif

size_t fws_mask_stream_min(void)
{
    size_t v = STREAM_LOAD();
    if (!v) {
        const size_t quarter = fws_cpu_llc_bytes() / 4;
        v = quarter > FWS_MASK_STREAM_FLOOR ? quarter : FWS_MASK_STREAM_FLOOR;
        STREAM_STORE(v);
    }
    return v;
}

void fws_mask_set_stream_min(size_t n)
{
    STREAM_STORE(n);
}

int fws_mask_set_isa(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "auto") == 0) {
        SEL_STORE(fws_mask_best());
        return 0;
    }
    unsigned feat = fws_cpu_features();
    for (unsigned i = 0; i < FWS_N_IMPLS; i++) {
        if (strcmp(name, fws_mask_impls[i].name) == 0) {
            if ((fws_mask_impls[i].needs & feat) != fws_mask_impls[i].needs)
                return -1;
            SEL_STORE(i + 1);
            return 0;
        }
    }
    return -1;
}

const char *fws_mask_isa(void)
{
    return fws_mask_impls[fws_mask_resolve() - 1].name;
}

static FWS_NOINLINE void fws_mask_dispatch(uint8_t *dst, const uint8_t *src, size_t n,
                                            const uint8_t key[4], unsigned phase)
{
    fws_mask_impls[fws_mask_resolve() - 1].fn(dst, src, n, key, phase);
}

void fws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
    if (n < 16) { /* tiny frames: no indirect call, no stack frame */
        fws_mask_small(dst, src, n, key, phase & 3u);
        return;
    }
    fws_mask_dispatch(dst, src, n, key, phase & 3u);
}
