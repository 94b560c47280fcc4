#include "cfloat16.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CF16_X86 1
#else
#define CF16_X86 0
#endif

/* ---- Portable scalar conversions (integer arithmetic only: no dependence on rounding modes or flags). ---- */

static inline float widen1(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        /* Infinity, or NaN quieted with its payload kept (as vcvtph2ps does). */
        bits = sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* Subnormal: m · 2^-24, normalized so that bit 10 is the implicit one. */
        uint32_t shift = 0;
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            shift++;
        }
        bits = sign | ((113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t narrow1(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | ((a >> 13) & 0x3ffu); /* NaN: quiet, top payload bits */
    if (a >= 0x47800000u) return sign | 0x7c00u;                      /* |x| ≥ 65536 and infinity */
    if (a >= 0x38800000u) {
        /* A normal half (before rounding): rebias the exponent, round the 13 dropped bits to nearest even.
           A carry out of the mantissa bumps the exponent, up to infinity for 65520 ≤ |x| < 65536. */
        uint32_t m = a - 0x38000000u;
        return sign | (uint16_t)((m + 0x0fffu + ((m >> 13) & 1u)) >> 13);
    }
    if (a <= 0x33000000u) return sign; /* |x| ≤ 2^-25 (the tie at 2^-25 goes to the even zero) */
    /* A subnormal half: the 24-bit significand shifted to units of 2^-24, rounded to nearest even. */
    uint32_t e = a >> 23;
    uint32_t significand = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14 ... 24 */
    uint32_t q = significand >> shift;
    uint32_t rest = significand & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) q++;
    return sign | (uint16_t)q;
}

void cf16_widen_scalar(const uint16_t *src, float *dst, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = widen1(src[i]);
}

void cf16_narrow_scalar(const float *src, uint16_t *dst, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = narrow1(src[i]);
}

/* ---- F16C, compiled for that target only and called only after a run-time CPU check. ---- */

#if CF16_X86
__attribute__((target("avx,f16c"))) static void widen_f16c(const uint16_t *src, float *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    if (i < count) {
        /* The tail through the same instruction, so that every element converts alike. */
        uint16_t h[8] = {0};
        float f[8];
        memcpy(h, src + i, (count - i) * sizeof(uint16_t));
        _mm256_storeu_ps(f, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)));
        memcpy(dst + i, f, (count - i) * sizeof(float));
    }
}

__attribute__((target("avx,f16c"))) static void narrow_f16c(const float *src, uint16_t *dst, size_t count) {
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    if (i < count) {
        float f[8] = {0};
        uint16_t h[8];
        memcpy(f, src + i, (count - i) * sizeof(float));
        __m128i v = _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)h, v);
        memcpy(dst + i, h, (count - i) * sizeof(uint16_t));
    }
}
#endif

int cf16_uses_f16c(void) {
#if CF16_X86
    /* Cheap after the first call; racing first calls compute the same answer. */
    static volatile int known = -1;
    int value = known;
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
        known = value;
    }
    return value;
#else
    return 0;
#endif
}

void cf16_widen(const uint16_t *src, float *dst, size_t count) {
#if CF16_X86
    if (cf16_uses_f16c()) {
        widen_f16c(src, dst, count);
        return;
    }
#endif
    cf16_widen_scalar(src, dst, count);
}

void cf16_narrow(const float *src, uint16_t *dst, size_t count) {
#if CF16_X86
    if (cf16_uses_f16c()) {
        narrow_f16c(src, dst, count);
        return;
    }
#endif
    cf16_narrow_scalar(src, dst, count);
}
