#ifndef VARAUDIT_CGEMM_H
#define VARAUDIT_CGEMM_H
/*
 * Single-precision GEMM whose weight operand is packed once, when a network is loaded.
 *
 * C[M×N] = A[M×K] · B[K×N] (+ C) (+ bias), all row-major. Each operand is either a plain row-major matrix,
 * packed here block by block, or already packed into panels:
 *   - A packed: panels of CK_GEMM_MR rows, `[ceil(M/MR)][K][MR]`, i.e. `ck_gemm_pack_rows` of A itself
 *     (a convolution's weight [O, C·kh·kw], which multiplies the data from the left);
 *   - B packed: panels of CK_GEMM_NR columns, `[ceil(N/NR)][K][NR]`, i.e. `ck_gemm_pack_rows` of Bᵀ
 *     (a linear layer's weight [out, in], which multiplies the data from the right as its transpose).
 * Rows beyond the matrix in the last panel are zero. The layout is the same whichever kernel runs, so a matrix
 * packed once serves every path.
 *
 * The blocking follows Goto and van de Geijn ("Anatomy of High-Performance Matrix Multiplication", 2008):
 * an MR×NR register tile, depth blocks that keep an A micro-panel in L1 and a block of B panels in L2. Kernels:
 * AVX-512 (one 8×32 tile in 16 zmm accumulators), AVX2 + FMA (four 4×16 tiles), and portable C, chosen at run
 * time from the CPU (`ck_gemm_best_path`); a caller may ask for a slower path (tests run every path the machine
 * has). Every path sums each output element over K in the same order within a depth block.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CK_GEMM_MR 8
#define CK_GEMM_NR 32

enum { CK_GEMM_PORTABLE = 1, CK_GEMM_AVX2 = 2, CK_GEMM_AVX512 = 3 };

/* The fastest path this CPU runs (CK_GEMM_AVX512, CK_GEMM_AVX2 or CK_GEMM_PORTABLE). */
int ck_gemm_best_path(void);

/* A requested path (0: the best) as one this CPU runs: the best when it asks for more. */
int ck_gemm_resolve_path(int path);

/* Floats a packed matrix of `rows` × `depth` takes with panels `width` rows wide. */
size_t ck_gemm_packed_count(size_t rows, size_t depth, size_t width);

/*
 * Packs panels [panel_begin, panel_end) of the row-major `rows` × `depth` matrix `src` (leading dimension
 * `ld`) into `dst` (laid out for all panels: panel p starts at p·depth·width): dst[p][k][i] = src[p·width + i][k],
 * zero for rows ≥ `rows`. Disjoint panel ranges may be packed concurrently.
 */
void ck_gemm_pack_rows(const float *src, size_t ld, size_t rows, size_t depth, size_t width, size_t panel_begin,
                       size_t panel_end, float *dst);

/* `ck_gemm_pack_rows` from float16 rows (bit patterns, widened exactly with `cf16_widen`). */
void ck_gemm_pack_rows_f16(const uint16_t *src, size_t ld, size_t rows, size_t depth, size_t width,
                           size_t panel_begin, size_t panel_end, float *dst);

/* The inverse: writes the `rows` × `depth` matrix held in panels of `width` to `dst` (leading dimension `ld`). */
void ck_gemm_unpack_rows(const float *src, size_t rows, size_t depth, size_t width, float *dst, size_t ld);

/* Floats of the workspace `ck_sgemm` packs into (about 1 MB). */
size_t ck_gemm_workspace_count(void);

/*
 * Computes the block rows [m_begin, m_end) × columns [n_begin, n_end) of
 *   C = addend + row_bias[i] + col_bias[j] + A · B
 * (the addend or either bias may be NULL; an addend is a matrix with leading dimension ldc: C itself to
 * accumulate, or another, such as a residual, which spares copying it into C first), then, when `gate` is not 0,
 * C = C·sigmoid(gate·C) (`ck_sigmoid_gate`: SiLU at 1, quick GELU at 1.702) on each register tile as its last
 * depth block is stored. A is packed (`a_packed`, panels of CK_GEMM_MR, lda unused) or row-major with leading
 * dimension lda; B is packed (`b_packed`, panels of CK_GEMM_NR, ldb unused) or row-major [K, N] with leading
 * dimension ldb. m_begin must be a multiple of CK_GEMM_MR and n_begin of CK_GEMM_NR. `workspace` holds
 * `ck_gemm_workspace_count()` floats for the operands packed on the fly; disjoint blocks may run concurrently,
 * each with its own workspace. `path` is one of the CK_GEMM_* paths, at most `ck_gemm_best_path()`; 0 picks the
 * best.
 */
void ck_sgemm(int path, size_t m, size_t n, size_t k, const float *a, size_t lda, int a_packed, const float *b,
              size_t ldb, int b_packed, float *c, size_t ldc, const float *addend, const float *row_bias,
              const float *col_bias, float gate, size_t m_begin, size_t m_end, size_t n_begin, size_t n_end,
              float *workspace);

/*
 * Scaled dot-product attention of one head on the kernel above, blocked with an online softmax so the scores
 * held at once are one block of keys for one panel of queries. Transposed so the queries are the columns:
 * Sᵀ = K · (scale·Qᵀ) needs no packing of the queries beyond one [d][NR] panel, the softmax runs down columns
 * (one query per SIMD lane), and Oᵀ += Vᵀ · Pᵀ reads the exponentials where the first product left them.
 *
 * `ck_attention_pack` packs a head's `keys` keys and values (rows of `d` floats, `stride` apart) once for all its
 * queries: K into panels of MR keys (`[keys/MR][d][MR]`) and Vᵀ into panels of MR head dimensions
 * (`[d/MR][keys][MR]`), each zero-padded, `ck_attention_packed_count(keys, d)` floats each.
 * `ck_attention_queries` then computes softmax(scale · q · kᵀ) · v for up to CK_GEMM_NR queries (rows of `q`,
 * `q_stride` apart) into rows of `out` (`out_stride` apart), with `ck_attention_workspace_count(d)` floats of
 * workspace. Distinct query panels may run concurrently over the same packed keys and values.
 */
size_t ck_attention_packed_count(size_t keys, size_t d);
void ck_attention_pack(int path, const float *k, const float *v, size_t keys, size_t d, size_t stride, float *kp,
                       float *vp);
size_t ck_attention_workspace_count(size_t d);
void ck_attention_queries(int path, size_t keys, size_t d, const float *kp, const float *vp, const float *q,
                          size_t rows, size_t q_stride, float scale, float *out, size_t out_stride,
                          float *workspace);

#ifdef __cplusplus
}
#endif

#endif
