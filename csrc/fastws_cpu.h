/* CPU feature detection and kernel ISA selection. Plain C11, no Python.h.
 *
 * Feature bits are "usable" bits: the CPU reports the instructions AND the
 * operating system saves the matching register state (XCR0 via xgetbv).
 *
 *   FWS_CPU_SSE2        SSE2 (always on x86-64).
 *   FWS_CPU_AVX2        AVX2 + BMI1 + BMI2 + LZCNT + POPCNT (+ FMA + MOVBE,
 *                       which MSVC's /arch:AVX2 may use), YMM state enabled.
 *                       *_avx2.c files are compiled with
 *                       -mavx2 -mbmi -mbmi2 -mlzcnt -mpopcnt (MSVC /arch:AVX2).
 *   FWS_CPU_AVX512BW    FWS_CPU_AVX2 + AVX-512 F, BW and VL (+ DQ + CD, which
 *                       MSVC's /arch:AVX512 may use; every BW CPU has them),
 *                       ZMM/opmask state enabled. *_avx512.c files are
 *                       compiled with the AVX2 flags plus -mavx512f
 *                       -mavx512bw -mavx512vl (MSVC /arch:AVX512).
 *   FWS_CPU_AVX512VBMI  FWS_CPU_AVX512BW + AVX512_VBMI. Files that need VBMI
 *                       (the UTF-8 AVX-512 kernel) additionally get
 *                       -mavx512vbmi and must only be selected with this bit.
 *   FWS_CPU_NEON        Advanced SIMD (always on AArch64).
 */
#ifndef FASTWS_CPU_H
#define FASTWS_CPU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    FWS_CPU_SSE2 = 1u,
    FWS_CPU_AVX2 = 2u,
    FWS_CPU_AVX512BW = 4u,   /* F+BW+VL, OS-enabled; implies FWS_CPU_AVX2 */
    FWS_CPU_AVX512VBMI = 8u,
    FWS_CPU_NEON = 16u
};

/* Detected once, then cached. Thread-safe (idempotent). */
unsigned fws_cpu_features(void);

/* Size in bytes of the largest data or unified cache the CPU describes (its
 * last-level cache, usually L3), 0 if unknown (off x86, or no such cpuid
 * leaf). Detected once, then cached. Thread-safe (idempotent). */
size_t fws_cpu_llc_bytes(void);

/* 0 ok, -1 unknown or unsupported on this CPU; "auto" re-selects the best. */
int fws_mask_set_isa(const char *name);
int fws_utf8_set_isa(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* FASTWS_CPU_H */
