/* CPU feature detection: cpuid + xgetbv on x86 (GCC/Clang and MSVC), NEON on
 * AArch64. See fastws_cpu.h for what each bit promises. */
#include "fastws_cpu.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FWS_X86 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#include <immintrin.h>
#else
#include <cpuid.h>
#endif
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define FWS_VOLATILE_CACHE 1
#elif !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
#define FWS_ATOMIC_CACHE 1
#endif

#ifdef FWS_X86
static void fws_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
#if defined(_MSC_VER) && !defined(__clang__)
    int regs[4];
    __cpuidex(regs, (int)leaf, (int)sub);
    r[0] = (uint32_t)regs[0];
    r[1] = (uint32_t)regs[1];
    r[2] = (uint32_t)regs[2];
    r[3] = (uint32_t)regs[3];
#else
    unsigned a = 0, b = 0, c = 0, d = 0;
    __cpuid_count(leaf, sub, a, b, c, d);
    r[0] = a;
    r[1] = b;
    r[2] = c;
    r[3] = d;
#endif
}

static uint64_t fws_xgetbv0(void)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return (uint64_t)_xgetbv(0);
#else
    uint32_t lo, hi;
    /* Encoded as bytes so no -mxsave flag is needed. */
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
#endif
}

static unsigned fws_detect(void)
{
    uint32_t r[4];
    unsigned f = 0;

    fws_cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    if (max_leaf < 1)
        return 0;

    fws_cpuid(1, 0, r);
    uint32_t ecx1 = r[2], edx1 = r[3];
    if (edx1 & (1u << 26))
        f |= FWS_CPU_SSE2;

    int osxsave = (ecx1 >> 27) & 1;
    int avx = (ecx1 >> 28) & 1;
    int popcnt = (ecx1 >> 23) & 1;
    int fma = (ecx1 >> 12) & 1;
    int movbe = (ecx1 >> 22) & 1;
    if (!osxsave || !avx || max_leaf < 7)
        return f;

    uint64_t xcr0 = fws_xgetbv0();
    int ymm_ok = (xcr0 & 0x6u) == 0x6u;          /* XMM + YMM */
    int zmm_ok = (xcr0 & 0xe6u) == 0xe6u;        /* + opmask, ZMM_Hi256, Hi16_ZMM */

    fws_cpuid(7, 0, r);
    uint32_t ebx7 = r[1], ecx7 = r[2];
    int avx2 = (ebx7 >> 5) & 1;
    int bmi1 = (ebx7 >> 3) & 1;
    int bmi2 = (ebx7 >> 8) & 1;
    int avx512f = (ebx7 >> 16) & 1;
    int avx512dq = (ebx7 >> 17) & 1;
    int avx512cd = (ebx7 >> 28) & 1;
    int avx512bw = (ebx7 >> 30) & 1;
    int avx512vl = (ebx7 >> 31) & 1;
    int avx512vbmi = (ecx7 >> 1) & 1;

    fws_cpuid(0x80000000u, 0, r);
    int lzcnt = 0;
    if (r[0] >= 0x80000001u) {
        fws_cpuid(0x80000001u, 0, r);
        lzcnt = (r[2] >> 5) & 1;
    }

    if (ymm_ok && avx2 && bmi1 && bmi2 && lzcnt && popcnt && fma && movbe) {
        f |= FWS_CPU_AVX2;
        if (zmm_ok && avx512f && avx512bw && avx512vl && avx512dq && avx512cd) {
            f |= FWS_CPU_AVX512BW;
            if (avx512vbmi)
                f |= FWS_CPU_AVX512VBMI;
        }
    }
    return f;
}

/* The largest data or unified cache in the deterministic cache parameters
 * leaf: 4 on Intel (and others), 0x8000001D on AMD and Hygon (with TOPOEXT). */
static size_t fws_detect_llc(void)
{
    uint32_t r[4];
    fws_cpuid(0, 0, r);
    const uint32_t max_leaf = r[0];
    /* "AuthenticAMD", "HygonGenuine" in EBX, EDX, ECX */
    const int amd = (r[1] == 0x68747541u && r[3] == 0x69746e65u && r[2] == 0x444d4163u)
                    || (r[1] == 0x6f677948u && r[3] == 0x6e65476eu && r[2] == 0x656e6975u);
    uint32_t leaf = 4;
    if (amd) {
        fws_cpuid(0x80000000u, 0, r);
        if (r[0] < 0x8000001Du)
            return 0;
        fws_cpuid(0x80000001u, 0, r);
        if (!((r[2] >> 22) & 1u)) /* TOPOEXT */
            return 0;
        leaf = 0x8000001Du;
    } else if (max_leaf < 4) {
        return 0;
    }
    uint64_t best = 0;
    for (uint32_t sub = 0; sub < 16; sub++) {
        fws_cpuid(leaf, sub, r);
        const uint32_t type = r[0] & 31u; /* 0 none (end), 1 data, 2 instruction, 3 unified */
        if (type == 0)
            break;
        if (type == 2)
            continue;
        const uint64_t ways = ((r[1] >> 22) & 0x3ffu) + 1u;
        const uint64_t partitions = ((r[1] >> 12) & 0x3ffu) + 1u;
        const uint64_t line = (r[1] & 0xfffu) + 1u;
        const uint64_t sets = (uint64_t)r[2] + 1u;
        const uint64_t size = ways * partitions * line * sets;
        if (size > best)
            best = size;
    }
    return best > (uint64_t)SIZE_MAX ? SIZE_MAX : (size_t)best;
}
#elif defined(__aarch64__) || defined(_M_ARM64)
static unsigned fws_detect(void) { return FWS_CPU_NEON; }
static size_t fws_detect_llc(void) { return 0; }
#else
static unsigned fws_detect(void) { return 0; }
static size_t fws_detect_llc(void) { return 0; }
#endif

/* The cache holds features + 0x80000000 once detected, 0 before. Detection is
 * idempotent, so two threads racing here both store the same value. */
#if defined(FWS_ATOMIC_CACHE)
static _Atomic unsigned fws_cpu_cache = 0;
unsigned fws_cpu_features(void)
{
    unsigned v = atomic_load_explicit(&fws_cpu_cache, memory_order_relaxed);
    if (!v) {
        v = fws_detect() | 0x80000000u;
        atomic_store_explicit(&fws_cpu_cache, v, memory_order_relaxed);
    }
    return v & 0x7fffffffu;
}
#else
static volatile unsigned fws_cpu_cache = 0;
unsigned fws_cpu_features(void)
{
    unsigned v = fws_cpu_cache;
    if (!v) {
        v = fws_detect() | 0x80000000u;
        fws_cpu_cache = v;
    }
    return v & 0x7fffffffu;
}
#endif

/* The last-level cache size + 1 once detected (so that 0 means "not yet"). */
#if defined(FWS_ATOMIC_CACHE)
static _Atomic size_t fws_llc_cache = 0;
size_t fws_cpu_llc_bytes(void)
{
    size_t v = atomic_load_explicit(&fws_llc_cache, memory_order_relaxed);
    if (!v) {
        size_t llc = fws_detect_llc();
        v = llc == SIZE_MAX ? llc : llc + 1;
        atomic_store_explicit(&fws_llc_cache, v, memory_order_relaxed);
    }
    return v - 1;
}
#else
static volatile size_t fws_llc_cache = 0;
size_t fws_cpu_llc_bytes(void)
{
    size_t v = fws_llc_cache;
    if (!v) {
        size_t llc = fws_detect_llc();
        v = llc == SIZE_MAX ? llc : llc + 1;
        fws_llc_cache = v;
    }
    return v - 1;
}
#endif
