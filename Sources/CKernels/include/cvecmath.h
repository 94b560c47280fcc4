#ifndef VARAUDIT_CVECMATH_H
#define VARAUDIT_CVECMATH_H
/*
 * Kernels of the softmax (along rows, and down columns for attention, its hottest loop after the GEMMs), the
 * sigmoid gate and GEGLU, on AVX-512, AVX2 + FMA or portable C, chosen at run time like the GEMM's (`path` 0
 * picks the best; tests pass each path the CPU has).
 *
 * The exponential is Cephes' expf: n = round(x·log2 e), r = x − n·ln 2 (ln 2 in two parts), e^r by a degree-6
 * polynomial, times 2^n; inputs clamped to [−87.34, 88.72]. Within ~1 ulp of the correctly rounded e^x. Every
 * path does the same operations in the same order without fused multiply-adds, so all give the same bits: an
 * audit's numbers do not depend on which CPU ran it.
 */
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Replaces each of the `n` floats x of `row` by e^(x − shift) and returns their sum. */
float ck_exp_shift_sum(int path, float *row, size_t n, float shift);

/* Replaces each of the `n` floats x at `x` by x·sigmoid(scale·x) = x / (1 + e^(−scale·x)): SiLU at scale 1, CLIP's
   quick GELU at 1.702. */
void ck_sigmoid_gate(int path, float *x, size_t n, float scale);

/* out[i] = hidden[i] · gelu(gate[i]) for `n` floats (GEGLU): gelu(u) = 0.5·u·(1 + erf(u/√2)) with erf by
   Abramowitz & Stegun 7.1.26 (absolute error below 2e-7) and the exponential above. */
void ck_geglu(int path, const float *hidden, const float *gate, float *out, size_t n);

/*
 * One block of keys of an online softmax whose queries are the columns: `s` holds `padded_rows` × `width` scores
 * (row-major, width a multiple of 16), of which the first `rows` are real keys. For each column j, with
 * m = max(max[j] (unless `first`), the column's scores): correction[j] = e^(max[j] − m) (not written when
 * `first`), each score x becomes e^(x − m), the padding rows become 0, sum[j] = sum[j]·correction[j] (0 when
 * `first`) + the column's exponentials in row order, and max[j] = m. Same bits on every path.
 */
void ck_softmax_columns(int path, float *s, size_t rows, size_t padded_rows, size_t width, float *max, float *sum,
                        float *correction, int first);

/* The largest of the `n` floats at `row` (−infinity when n is 0). */
float ck_row_max(int path, const float *row, size_t n);

#ifdef __cplusplus
}
#endif

#endif
