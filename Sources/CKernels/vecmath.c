#include "cvecmath.h"

#include "cgemm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CKV_X86 1
#else
#define CKV_X86 0
#endif

/* Cephes expf constants. */
#define EXP_LO -87.33654f
#define EXP_HI 88.72283f
#define LOG2E 1.44269504f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define MAGIC 12582912.0f /* 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits */
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

/* Abramowitz & Stegun 7.1.26: erf(a) ≈ 1 − (A1·t + … + A5·t⁵)·e^(−a²), t = 1/(1 + ERF_P·a), a ≥ 0. */
#define ERF_P 0.3275911f
#define A1 0.254829592f
#define A2 -0.284496736f
#define A3 1.421413741f
#define A4 -1.453152027f
#define A5 1.061405429f
#define SQRT_HALF 0.70710678f

static inline float exp_portable(float x) {
    x = x < EXP_LO ? EXP_LO : x > EXP_HI ? EXP_HI : x;
    float shifted = x * LOG2E + MAGIC;
    float n = shifted - MAGIC;
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float z = r * r;
    float p = P0;
    p = p * r + P1;
    p = p * r + P2;
    p = p * r + P3;
    p = p * r + P4;
    p = p * r + P5;
    p = p * z + r + 1;
    int32_t k;
    memcpy(&k, &shifted, sizeof k);
    uint32_t bits = (uint32_t)(k - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Sums are kept in 16 partial sums (element i in partial i mod 16) added up in order at the end, on every
   path, so the sum has the same bits whichever path made it. */
static float sum_partials(const float partial[16]) {
    float total = 0;
    for (int j = 0; j < 16; j++) total += partial[j];
    return total;
}

static float exp_shift_sum_portable(float *row, size_t n, float shift) {
    float partial[16] = {0};
    for (size_t i = 0; i < n; i++) {
        float e = exp_portable(row[i] - shift);
        row[i] = e;
        partial[i % 16] += e;
    }
    return sum_partials(partial);
}

static void sigmoid_gate_portable(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1 + exp_portable(-scale * x[i]));
}

/* hidden · gelu(gate) with gelu(u) = 0.5·u·(1 + erf(u/√2)), erf as above (odd in its argument). */
static inline float geglu1(float h, float u) {
    float x = u * SQRT_HALF;
    float a = x < 0 ? -x : x;
    float t = 1 / (1 + ERF_P * a);
    float poly = A5;
    poly = poly * t + A4;
    poly = poly * t + A3;
    poly = poly * t + A2;
    poly = poly * t + A1;
    float y = 1 - poly * t * exp_portable(-(a * a));
    y = x < 0 ? -y : y;
    return h * (0.5f * u * (1 + y));
}

static void geglu_portable(const float *h, const float *g, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = geglu1(h[i], g[i]);
}

static float row_max_portable(const float *row, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = row[i] > m ? row[i] : m;
    return m;
}

/* One key block of the column-wise online softmax (see cvecmath.h): column j's running maximum, correction and
   sum, its exponentials written in place, rows in order. */
static void softmax_columns_portable(float *s, size_t rows, size_t padded_rows, size_t width, float *max, float *sum,
                                     float *correction, int first) {
    for (size_t j = 0; j < width; j++) {
        float m = first ? -INFINITY : max[j];
        for (size_t r = 0; r < rows; r++) m = s[r * width + j] > m ? s[r * width + j] : m;
        float total = 0;
        if (!first) {
            correction[j] = exp_portable(max[j] - m);
            total = sum[j] * correction[j];
        }
        for (size_t r = 0; r < rows; r++) {
            float e = exp_portable(s[r * width + j] - m);
            s[r * width + j] = e;
            total += e;
        }
        for (size_t r = rows; r < padded_rows; r++) s[r * width + j] = 0;
        max[j] = m;
        sum[j] = total;
    }
}

#if CKV_X86

/* The column softmax on one x86 vector width (the loop of softmax_columns_portable, W columns at a time): V is the
   vector type, W its lanes, the rest that width's intrinsics and exponential. Both paths expand this one loop. */
#define SOFTMAX_COLUMNS(V, W, LOAD, STORE, SET1, ZERO, MAX, SUB, MUL, ADD, EXP)                                      \
    for (size_t j = 0; j < width; j += W) {                                                                          \
        V m = first ? SET1(-INFINITY) : LOAD(max + j);                                                               \
        for (size_t r = 0; r < rows; r++) m = MAX(m, LOAD(s + r * width + j));                                       \
        V total = ZERO();                                                                                            \
        if (!first) {                                                                                                \
            V c = EXP(SUB(LOAD(max + j), m));                                                                        \
            STORE(correction + j, c);                                                                                \
            total = MUL(LOAD(sum + j), c);                                                                           \
        }                                                                                                            \
        for (size_t r = 0; r < rows; r++) {                                                                          \
            V e = EXP(SUB(LOAD(s + r * width + j), m));                                                              \
            STORE(s + r * width + j, e);                                                                             \
            total = ADD(total, e);                                                                                   \
        }                                                                                                            \
        for (size_t r = rows; r < padded_rows; r++) STORE(s + r * width + j, ZERO());                                \
        STORE(max + j, m);                                                                                           \
        STORE(sum + j, total);                                                                                       \
    }

__attribute__((target("avx512f,fma"))) static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    __m512 magic = _mm512_set1_ps(MAGIC);
    __m512 shifted = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), magic);
    __m512 n = _mm512_sub_ps(shifted, magic);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(LN2_HI)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(LN2_LO)));
    __m512 z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(P0);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P1));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P2));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P3));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P4));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(P5));
    p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), _mm512_set1_ps(1));
    __m512i k = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

__attribute__((target("avx512f,fma"))) static float exp_shift_sum_avx512(float *row, size_t n, float shift) {
    __m512 s = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + i), s));
        _mm512_mask_storeu_ps(row + i, mask, e);
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
    }
    float partial[16];
    _mm512_storeu_ps(partial, sum);
    return sum_partials(partial);
}

__attribute__((target("avx512f,fma"))) static void sigmoid_gate_avx512(float *x, size_t n, float scale) {
    __m512 s = _mm512_set1_ps(-scale), one = _mm512_set1_ps(1);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        __m512 g = _mm512_div_ps(v, _mm512_add_ps(one, exp512(_mm512_mul_ps(s, v))));
        _mm512_mask_storeu_ps(x + i, mask, g);
    }
}

__attribute__((target("avx512f,fma"))) static void geglu_avx512(const float *h, const float *g, float *out, size_t n) {
    __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1), zero = _mm512_setzero_ps();
    __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 u = _mm512_maskz_loadu_ps(mask, g + i);
        __m512 x = _mm512_mul_ps(u, _mm512_set1_ps(SQRT_HALF));
        __m512 a = _mm512_castsi512_ps(_mm512_andnot_epi32(sign, _mm512_castps_si512(x)));
        __m512 t = _mm512_div_ps(one, _mm512_add_ps(one, _mm512_mul_ps(_mm512_set1_ps(ERF_P), a)));
        __m512 poly = _mm512_set1_ps(A5);
        poly = _mm512_add_ps(_mm512_mul_ps(poly, t), _mm512_set1_ps(A4));
        poly = _mm512_add_ps(_mm512_mul_ps(poly, t), _mm512_set1_ps(A3));
        poly = _mm512_add_ps(_mm512_mul_ps(poly, t), _mm512_set1_ps(A2));
        poly = _mm512_add_ps(_mm512_mul_ps(poly, t), _mm512_set1_ps(A1));
        __m512 square = _mm512_mul_ps(a, a);
        __m512 e = exp512(_mm512_castsi512_ps(_mm512_xor_epi32(_mm512_castps_si512(square), sign)));
        __m512 y = _mm512_sub_ps(one, _mm512_mul_ps(_mm512_mul_ps(poly, t), e));
        __mmask16 negative = _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ);
        __m512i flipped = _mm512_mask_xor_epi32(_mm512_castps_si512(y), negative, _mm512_castps_si512(y), sign);
        y = _mm512_castsi512_ps(flipped);
        __m512 gelu = _mm512_mul_ps(_mm512_mul_ps(half, u), _mm512_add_ps(one, y));
        _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, h + i), gelu));
    }
}

__attribute__((target("avx512f"))) static float row_max_avx512(const float *row, size_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(row + i));
    if (i < n) {
        __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, mask, m, _mm512_maskz_loadu_ps(mask, row + i));
    }
    return _mm512_reduce_max_ps(m);
}


__attribute__((target("avx512f,fma"))) static void softmax_columns_avx512(float *s, size_t rows, size_t padded_rows,
                                                                          size_t width, float *max, float *sum,
                                                                          float *correction, int first) {
    SOFTMAX_COLUMNS(__m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_max_ps,
                    _mm512_sub_ps, _mm512_mul_ps, _mm512_add_ps, exp512)
}

__attribute__((target("avx2,fma"))) static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 magic = _mm256_set1_ps(MAGIC);
    __m256 shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), magic);
    __m256 n = _mm256_sub_ps(shifted, magic);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)));
    __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(P0);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P5));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), _mm256_set1_ps(1));
    __m256i k = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

__attribute__((target("avx2,fma"))) static float exp_shift_sum_avx2(float *row, size_t n, float shift) {
    __m256 s = _mm256_set1_ps(shift), sum0 = _mm256_setzero_ps(), sum1 = sum0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + i), s));
        __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(row + i + 8), s));
        _mm256_storeu_ps(row + i, e0);
        _mm256_storeu_ps(row + i + 8, e1);
        sum0 = _mm256_add_ps(sum0, e0);
        sum1 = _mm256_add_ps(sum1, e1);
    }
    float partial[16];
    _mm256_storeu_ps(partial, sum0);
    _mm256_storeu_ps(partial + 8, sum1);
    if (i < n) {
        float tail[16];
        for (size_t j = 0; j < 16; j++) tail[j] = i + j < n ? row[i + j] - shift : 0;
        _mm256_storeu_ps(tail, exp256(_mm256_loadu_ps(tail)));
        _mm256_storeu_ps(tail + 8, exp256(_mm256_loadu_ps(tail + 8)));
        for (size_t j = 0; i + j < n; j++) {
            row[i + j] = tail[j];
            partial[j] += tail[j];
        }
    }
    return sum_partials(partial);
}

__attribute__((target("avx2,fma"))) static void sigmoid_gate_avx2(float *x, size_t n, float scale) {
    __m256 s = _mm256_set1_ps(-scale), one = _mm256_set1_ps(1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, exp256(_mm256_mul_ps(s, v)))));
    }
    for (; i < n; i++) x[i] = x[i] / (1 + exp_portable(-scale * x[i]));
}

__attribute__((target("avx2,fma"))) static void geglu_avx2(const float *h, const float *g, float *out, size_t n) {
    __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1), sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_loadu_ps(g + i);
        __m256 x = _mm256_mul_ps(u, _mm256_set1_ps(SQRT_HALF));
        __m256 a = _mm256_andnot_ps(sign, x);
        __m256 t = _mm256_div_ps(one, _mm256_add_ps(one, _mm256_mul_ps(_mm256_set1_ps(ERF_P), a)));
        __m256 poly = _mm256_set1_ps(A5);
        poly = _mm256_add_ps(_mm256_mul_ps(poly, t), _mm256_set1_ps(A4));
        poly = _mm256_add_ps(_mm256_mul_ps(poly, t), _mm256_set1_ps(A3));
        poly = _mm256_add_ps(_mm256_mul_ps(poly, t), _mm256_set1_ps(A2));
        poly = _mm256_add_ps(_mm256_mul_ps(poly, t), _mm256_set1_ps(A1));
        __m256 e = exp256(_mm256_xor_ps(_mm256_mul_ps(a, a), sign));
        __m256 y = _mm256_sub_ps(one, _mm256_mul_ps(_mm256_mul_ps(poly, t), e));
        y = _mm256_blendv_ps(y, _mm256_xor_ps(y, sign), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
        __m256 gelu = _mm256_mul_ps(_mm256_mul_ps(half, u), _mm256_add_ps(one, y));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(h + i), gelu));
    }
    for (; i < n; i++) out[i] = geglu1(h[i], g[i]);
}

__attribute__((target("avx2"))) static float row_max_avx2(const float *row, size_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float best = -INFINITY;
    for (int j = 0; j < 8; j++) best = lanes[j] > best ? lanes[j] : best;
    for (; i < n; i++) best = row[i] > best ? row[i] : best;
    return best;
}


__attribute__((target("avx2,fma"))) static void softmax_columns_avx2(float *s, size_t rows, size_t padded_rows,
                                                                     size_t width, float *max, float *sum,
                                                                     float *correction, int first) {
    SOFTMAX_COLUMNS(__m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_max_ps,
                    _mm256_sub_ps, _mm256_mul_ps, _mm256_add_ps, exp256)
}

#endif

float ck_exp_shift_sum(int path, float *row, size_t n, float shift) {
#if CKV_X86
    switch (ck_gemm_resolve_path(path)) {
    case CK_GEMM_AVX512: return exp_shift_sum_avx512(row, n, shift);
    case CK_GEMM_AVX2: return exp_shift_sum_avx2(row, n, shift);
    default: break;
    }
#endif
    return exp_shift_sum_portable(row, n, shift);
}

float ck_row_max(int path, const float *row, size_t n) {
#if CKV_X86
    switch (ck_gemm_resolve_path(path)) {
    case CK_GEMM_AVX512: return row_max_avx512(row, n);
    case CK_GEMM_AVX2: return row_max_avx2(row, n);
    default: break;
    }
#endif
    return row_max_portable(row, n);
}

void ck_sigmoid_gate(int path, float *x, size_t n, float scale) {
#if CKV_X86
    switch (ck_gemm_resolve_path(path)) {
    case CK_GEMM_AVX512: sigmoid_gate_avx512(x, n, scale); return;
    case CK_GEMM_AVX2: sigmoid_gate_avx2(x, n, scale); return;
    default: break;
    }
#endif
    sigmoid_gate_portable(x, n, scale);
}

void ck_geglu(int path, const float *hidden, const float *gate, float *out, size_t n) {
#if CKV_X86
    switch (ck_gemm_resolve_path(path)) {
    case CK_GEMM_AVX512: geglu_avx512(hidden, gate, out, n); return;
    case CK_GEMM_AVX2: geglu_avx2(hidden, gate, out, n); return;
    default: break;
    }
#endif
    geglu_portable(hidden, gate, out, n);
}

void ck_softmax_columns(int path, float *s, size_t rows, size_t padded_rows, size_t width, float *max, float *sum,
                        float *correction, int first) {
#if CKV_X86
    switch (ck_gemm_resolve_path(path)) {
    case CK_GEMM_AVX512: softmax_columns_avx512(s, rows, padded_rows, width, max, sum, correction, first); return;
    case CK_GEMM_AVX2: softmax_columns_avx2(s, rows, padded_rows, width, max, sum, correction, first); return;
    default: break;
    }
#endif
    softmax_columns_portable(s, rows, padded_rows, width, max, sum, correction, first);
}
