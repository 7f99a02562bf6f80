/* Helpers shared by the masking kernels (not installed, not public). */
#ifndef FASTWS_MASK_INTERNAL_H
#define FASTWS_MASK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FWS_ARCH_X86 1
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define FWS_ARCH_ARM64 1
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define FWS_INLINE static __forceinline
#else
#define FWS_INLINE static inline __attribute__((always_inline))
#endif

#if (defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) || defined(_MSC_VER)
#define FWS_LITTLE_ENDIAN 1
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FWS_BIG_ENDIAN 1
#endif

/* Copies (dst != src) of at least fws_mask_stream_min() bytes bypass the
 * caches with non-temporal stores: max(FWS_MASK_STREAM_FLOOR, a quarter of
 * the last-level cache). Source and destination then no longer fit in a usual
 * share of that cache, and a plain store first reads the destination line it
 * is about to overwrite entirely: streaming skips that read, a third of the
 * memory traffic. Measured on a 32 MiB-L3 AMD EPYC (AVX-512): from 8 MiB
 * up, streaming is 10-20% faster than any cached store width; at 4 MiB and
 * below it is no faster, and at 1 MiB it is much slower (the output would
 * otherwise still be in cache). On an Intel Xeon whose L3 is 480 MiB (a
 * 2-vCPU VM; apply_mask, AVX-512, medians of 5-9 interleaved rounds),
 * streaming was slower at every size tried: 16 MiB 1.25 vs 1.15 ms, 32 MiB
 * 21.9 vs 13.7 ms, 128 MiB 86 vs 53 ms (from 32 MiB up every result is a
 * freshly mapped, just zeroed and so cached block). A quarter of the L3 keeps
 * the EPYC threshold and takes that Xeon up to 120 MiB; 128 MiB is still
 * streamed there, slower. In place, the line is already in cache. */
#define FWS_MASK_STREAM_FLOOR ((size_t)8 << 20)

/* The threshold above, computed on first use (thread-safe). */
size_t fws_mask_stream_min(void);

/* Tests only: use n as the threshold (0: compute it from the CPU again). */
void fws_mask_set_stream_min(size_t n);

/* n >= this: a copy streams (the CPU's cache size is only asked for large n). */
#define FWS_MASK_STREAMS(n, dst, src)                                                              \
    ((n) >= FWS_MASK_STREAM_FLOOR && (dst) != (src) && (n) >= fws_mask_stream_min())

/* Whether a copy's aligned body should be walked from its end. A load whose
 * address matches that of an earlier store still in flight in its low 12
 * bits is held back until the store is resolved ("4K aliasing"). Walked
 * forward, a copy's loads run that close behind its stores when dst lies
 * shortly after src modulo 4 KiB; walked backward, when it lies shortly
 * before. With dst - src between 1 and 2047 modulo 4 KiB, the kernels that
 * move 128 or 256 bytes per step walk backward. Measured (AVX-512, 64 KiB
 * apply_mask, every 32-byte step of dst - src): forward, 1.63-1.71 us with
 * dst 144 to 496 bytes after src modulo 4 KiB against 1.49-1.56 us otherwise;
 * websockets' 16-byte SSE2 loop took 1.57-1.68 us throughout. */
FWS_INLINE int fws_copy_backward(const uint8_t *dst, const uint8_t *src)
{
    const uintptr_t d = ((uintptr_t)dst - (uintptr_t)src) & 4095u;
    return d != 0 && d < 2048;
}

/* The key as it appears in memory starting at a byte whose phase is `phase`
 * (as a 32-bit word in native byte order). */
FWS_INLINE uint32_t fws_key32(const uint8_t key[4], unsigned phase)
{
#if defined(FWS_LITTLE_ENDIAN) || defined(FWS_BIG_ENDIAN)
    uint32_t k;
    memcpy(&k, key, 4);
    const unsigned s = (phase & 3u) * 8u;
#ifdef FWS_LITTLE_ENDIAN
    return (k >> s) | (k << ((32u - s) & 31u)); /* rotate; s == 0 gives k */
#else
    return (k << s) | (k >> ((32u - s) & 31u));
#endif
#else
    uint8_t k[4];
    k[0] = key[phase & 3];
    k[1] = key[(phase + 1) & 3];
    k[2] = key[(phase + 2) & 3];
    k[3] = key[(phase + 3) & 3];
    uint32_t v;
    memcpy(&v, k, 4);
    return v;
#endif
}

/* Same for 8 bytes; both halves are equal, so byte order does not matter. */
FWS_INLINE uint64_t fws_key64(const uint8_t key[4], unsigned phase)
{
    const uint64_t k = fws_key32(key, phase);
    return k | (k << 32);
}

/* n < 16. Every load happens before the first store, so in place works with
 * the overlapping second word. */
FWS_INLINE void fws_mask_small(uint8_t *dst, const uint8_t *src, size_t n,
                               const uint8_t key[4], unsigned phase)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        a ^= fws_key64(key, phase);
        b ^= fws_key64(key, phase + (unsigned)(n & 3));
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        a ^= fws_key32(key, phase);
        b ^= fws_key32(key, phase + (unsigned)(n & 3));
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = (uint8_t)(src[i] ^ key[(phase + i) & 3]);
    }
}

#endif /* FASTWS_MASK_INTERNAL_H */
