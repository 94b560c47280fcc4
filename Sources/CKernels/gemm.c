#include "cgemm.h"
#include "cfloat16.h"
#include "cvecmath.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CKG_X86 1
#else
#define CKG_X86 0
#endif

#define MR CK_GEMM_MR
#define NR CK_GEMM_NR
/* Largest depth of a block: an A micro-panel (MR × KC, 12 KB) stays in L1 while the B panels stream through it.
   K is split into equal blocks of at most KC (a short last block costs a pass over C for little work). */
#ifndef KC
#define KC 384
#endif
/* Rows of A packed at a time (a multiple of MR). */
#ifndef MC
#define MC 128
#endif
/* Columns of B per block (a multiple of NR): KC × NC floats (512 KB) stay in L2 while every A panel passes. */
#ifndef NC
#define NC 512
#endif

/* One register tile: C[0..mr) × [0..nr) of the tile at `c` = acc, or src + acc when `src` is given (a tile with
   the same leading dimension: `c` itself to accumulate, or another matrix such as a residual), plus rb[i] and
   cb[j] when given, from `kc` steps of an A micro-panel (MR floats per step) and a B micro-panel (NR per step). */
typedef void (*ck_kernel)(size_t kc, const float *a, const float *b, float *c, size_t ldc, const float *src,
                          size_t mr, size_t nr, const float *rb, const float *cb);

/* ---- Portable kernel ---- */

static void kernel_portable(size_t kc, const float *a, const float *b, float *c, size_t ldc, const float *src,
                            size_t mr, size_t nr, const float *rb, const float *cb) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (size_t p = 0; p < kc; p++) {
        for (size_t i = 0; i < MR; i++) {
            float ai = a[i];
            for (size_t j = 0; j < NR; j++) acc[i][j] += ai * b[j];
        }
        a += MR;
        b += NR;
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (size_t j = 0; j < nr; j++) {
            float v = acc[i][j];
            if (cb) v += cb[j];
            if (rb) v += rb[i];
            ci[j] = src ? src[i * ldc + j] + v : v;
        }
    }
}

#if CKG_X86

/* ---- AVX2 + FMA: the 8×32 tile as four 4×16 tiles (8 accumulators, 2 B vectors, 1 broadcast) ---- */

__attribute__((target("avx2,fma"))) static void kernel_avx2_4x16(size_t kc, const float *a, const float *b, float *c,
                                                                  size_t ldc, const float *src, size_t mr, size_t nr,
                                                                  const float *rb, const float *cb) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (size_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a), a1 = _mm256_broadcast_ss(a + 1);
        c00 = _mm256_fmadd_ps(a0, b0, c00);
        c01 = _mm256_fmadd_ps(a0, b1, c01);
        c10 = _mm256_fmadd_ps(a1, b0, c10);
        c11 = _mm256_fmadd_ps(a1, b1, c11);
        __m256 a2 = _mm256_broadcast_ss(a + 2), a3 = _mm256_broadcast_ss(a + 3);
        c20 = _mm256_fmadd_ps(a2, b0, c20);
        c21 = _mm256_fmadd_ps(a2, b1, c21);
        c30 = _mm256_fmadd_ps(a3, b0, c30);
        c31 = _mm256_fmadd_ps(a3, b1, c31);
        a += MR;
        b += NR;
    }
    __m256 cb0 = _mm256_setzero_ps(), cb1 = cb0;
    float tile[4][16];
    if (cb) {
        float row[16] = {0};
        memcpy(row, cb, (nr < 16 ? nr : 16) * sizeof(float));
        cb0 = _mm256_loadu_ps(row);
        cb1 = _mm256_loadu_ps(row + 8);
    }
    __m256 r0[4] = {c00, c10, c20, c30}, r1[4] = {c01, c11, c21, c31};
    for (size_t i = 0; i < mr; i++) {
        __m256 v0 = _mm256_add_ps(r0[i], cb0), v1 = _mm256_add_ps(r1[i], cb1);
        if (rb) {
            __m256 r = _mm256_set1_ps(rb[i]);
            v0 = _mm256_add_ps(v0, r);
            v1 = _mm256_add_ps(v1, r);
        }
        float *ci = c + i * ldc;
        const float *si = src ? src + i * ldc : NULL;
        if (nr == 16) {
            if (si) {
                v0 = _mm256_add_ps(_mm256_loadu_ps(si), v0);
                v1 = _mm256_add_ps(_mm256_loadu_ps(si + 8), v1);
            }
            _mm256_storeu_ps(ci, v0);
            _mm256_storeu_ps(ci + 8, v1);
        } else {
            _mm256_storeu_ps(tile[i], v0);
            _mm256_storeu_ps(tile[i] + 8, v1);
            for (size_t j = 0; j < nr; j++) ci[j] = si ? si[j] + tile[i][j] : tile[i][j];
        }
    }
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(size_t kc, const float *a, const float *b, float *c,
                                                             size_t ldc, const float *src, size_t mr, size_t nr,
                                                             const float *rb, const float *cb) {
    for (size_t i0 = 0; i0 < mr; i0 += 4) {
        size_t rows = mr - i0 < 4 ? mr - i0 : 4;
        for (size_t j0 = 0; j0 < nr; j0 += 16) {
            size_t cols = nr - j0 < 16 ? nr - j0 : 16;
            kernel_avx2_4x16(kc, a + i0, b + j0, c + i0 * ldc + j0, ldc, src ? src + i0 * ldc + j0 : NULL, rows,
                             cols, rb ? rb + i0 : NULL, cb ? cb + j0 : NULL);
        }
    }
}

/* ---- AVX-512: one 8×32 tile in 16 zmm accumulators (A broadcast from memory) ---- */

#define CKG_ROW(i)                                                                                                    \
    if (i < active) {                                                                                                 \
        __m512 ai = _mm512_set1_ps(a[(i) * a_row]);                                                                   \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                                                   \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                                                   \
    }

#define CKG_STORE(i)                                                                                                  \
    if (i < mr) {                                                                                                     \
        __m512 v0 = _mm512_add_ps(c##i##0, cb0), v1 = _mm512_add_ps(c##i##1, cb1);                                   \
        if (rb) {                                                                                                     \
            __m512 r = _mm512_set1_ps(rb[i]);                                                                         \
            v0 = _mm512_add_ps(v0, r);                                                                                \
            v1 = _mm512_add_ps(v1, r);                                                                                \
        }                                                                                                             \
        float *ci = c + (size_t)(i) * ldc;                                                                            \
        if (src) {                                                                                                    \
            const float *si = src + (size_t)(i) * ldc;                                                                \
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, si), v0);                                                    \
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, si + 16), v1);                                               \
        }                                                                                                             \
        _mm512_mask_storeu_ps(ci, m0, v0);                                                                            \
        _mm512_mask_storeu_ps(ci + 16, m1, v1);                                                                       \
    }

/* The tile with A's element (i, p) at a[i·a_row + p·a_step]: a packed micro-panel (1, MR), or rows of a plain
   row-major A read in place (lda, 1), which spares packing A for a linear layer's input. Only the first `active`
   rows are computed (a constant at each call site, so each count gets its own code): a last panel of 1 row
   costs 1/8 of a full one. */
__attribute__((target("avx512f,fma"), always_inline)) static inline void
tile_avx512(size_t kc, const float *a, size_t a_row, size_t a_step, const float *b, float *c, size_t ldc,
            const float *src, size_t mr, size_t nr, const float *rb, const float *cb, const size_t active) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        CKG_ROW(0) CKG_ROW(1) CKG_ROW(2) CKG_ROW(3) CKG_ROW(4) CKG_ROW(5) CKG_ROW(6) CKG_ROW(7)
        a += a_step;
        b += NR;
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : (__mmask16)0;
    __m512 cb0 = _mm512_setzero_ps(), cb1 = cb0;
    if (cb) {
        cb0 = _mm512_maskz_loadu_ps(m0, cb);
        cb1 = _mm512_maskz_loadu_ps(m1, cb + 16);
    }
    CKG_STORE(0) CKG_STORE(1) CKG_STORE(2) CKG_STORE(3) CKG_STORE(4) CKG_STORE(5) CKG_STORE(6) CKG_STORE(7)
}

/* `tile_avx512` with `active` = mr as a constant. */
#define CKG_BY_ROWS(call_with_active)                                                                                 \
    switch (mr) {                                                                                                     \
    case 1: call_with_active(1); break;                                                                               \
    case 2: call_with_active(2); break;                                                                               \
    case 3: call_with_active(3); break;                                                                               \
    case 4: call_with_active(4); break;                                                                               \
    case 5: call_with_active(5); break;                                                                               \
    case 6: call_with_active(6); break;                                                                               \
    case 7: call_with_active(7); break;                                                                               \
    default: call_with_active(8); break;                                                                              \
    }

__attribute__((target("avx512f,fma"))) static void kernel_avx512(size_t kc, const float *a, const float *b,
                                                                  float *c, size_t ldc, const float *src, size_t mr,
                                                                  size_t nr, const float *rb, const float *cb) {
#define CKG_PACKED(rows) tile_avx512(kc, a, 1, MR, b, c, ldc, src, mr, nr, rb, cb, rows)
    CKG_BY_ROWS(CKG_PACKED)
#undef CKG_PACKED
}

/* The first mr (≤ 8) rows of a plain A with leading dimension lda, read in place. */
__attribute__((target("avx512f,fma"))) static void kernel_avx512_rows(size_t kc, const float *a, size_t lda,
                                                                       const float *b, float *c, size_t ldc,
                                                                       const float *src, size_t mr, size_t nr,
                                                                       const float *rb, const float *cb) {
#define CKG_PLAIN(rows) tile_avx512(kc, a, lda, 1, b, c, ldc, src, mr, nr, rb, cb, rows)
    CKG_BY_ROWS(CKG_PLAIN)
#undef CKG_PLAIN
}

#endif

int ck_gemm_best_path(void) {
#if CKG_X86
    static int best = 0;
    if (best == 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
            best = CK_GEMM_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            best = CK_GEMM_AVX2;
        else
            best = CK_GEMM_PORTABLE;
    }
    return best;
#else
    return CK_GEMM_PORTABLE;
#endif
}

int ck_gemm_resolve_path(int path) {
    int best = ck_gemm_best_path();
    return path <= 0 || path > best ? best : path;
}

static ck_kernel kernel_for(int path) {
    path = ck_gemm_resolve_path(path);
#if CKG_X86
    if (path == CK_GEMM_AVX512) return kernel_avx512;
    if (path == CK_GEMM_AVX2) return kernel_avx2;
#endif
    return kernel_portable;
}

size_t ck_gemm_packed_count(size_t rows, size_t depth, size_t width) {
    return (rows + width - 1) / width * width * depth;
}

/* dst[j · dst_ld + i] = scale · src[i · src_ld + j] for an 8 × 8 block: packing rows into GEMM panels, and the
   attention's transposes between rows of queries, keys or outputs and the panels the kernel reads. `scale`
   multiplies each element once (bits equal to the scalar loop's on every path; at 1 every value but a signalling
   NaN is copied exactly). */
typedef void (*ck_transpose8)(const float *src, size_t src_ld, float *dst, size_t dst_ld, float scale);

static void transpose8_portable(const float *src, size_t src_ld, float *dst, size_t dst_ld, float scale) {
    for (size_t i = 0; i < 8; i++) {
        for (size_t j = 0; j < 8; j++) dst[j * dst_ld + i] = scale * src[i * src_ld + j];
    }
}

#if CKG_X86
__attribute__((target("avx2"))) static void transpose8_avx2(const float *src, size_t src_ld, float *dst,
                                                            size_t dst_ld, float scale) {
    __m256 f = _mm256_set1_ps(scale);
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + src_ld), r2 = _mm256_loadu_ps(src + 2 * src_ld),
           r3 = _mm256_loadu_ps(src + 3 * src_ld), r4 = _mm256_loadu_ps(src + 4 * src_ld),
           r5 = _mm256_loadu_ps(src + 5 * src_ld), r6 = _mm256_loadu_ps(src + 6 * src_ld),
           r7 = _mm256_loadu_ps(src + 7 * src_ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    _mm256_storeu_ps(dst, _mm256_mul_ps(f, _mm256_permute2f128_ps(u0, u4, 0x20)));
    _mm256_storeu_ps(dst + dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u1, u5, 0x20)));
    _mm256_storeu_ps(dst + 2 * dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u2, u6, 0x20)));
    _mm256_storeu_ps(dst + 3 * dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u3, u7, 0x20)));
    _mm256_storeu_ps(dst + 4 * dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u0, u4, 0x31)));
    _mm256_storeu_ps(dst + 5 * dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u1, u5, 0x31)));
    _mm256_storeu_ps(dst + 6 * dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u2, u6, 0x31)));
    _mm256_storeu_ps(dst + 7 * dst_ld, _mm256_mul_ps(f, _mm256_permute2f128_ps(u3, u7, 0x31)));
}
#endif

static ck_transpose8 transpose8_for(int path) {
#if CKG_X86
    if (ck_gemm_resolve_path(path) >= CK_GEMM_AVX2) return transpose8_avx2;
#endif
    return transpose8_portable;
}

/* dst[j · dst_ld + i] = scale · src[i · src_ld + j] for i < rows, j < cols, and 0 for rows ≤ i < rows_pad: whole
   8 × 8 blocks through `t`, the edges element by element. */
static void transpose_block(ck_transpose8 t, const float *src, size_t src_ld, size_t rows, size_t rows_pad,
                            size_t cols, float *dst, size_t dst_ld, float scale) {
    size_t full_rows = rows / 8 * 8, full_cols = cols / 8 * 8;
    for (size_t i0 = 0; i0 < full_rows; i0 += 8) {
        for (size_t j0 = 0; j0 < full_cols; j0 += 8)
            t(src + i0 * src_ld + j0, src_ld, dst + j0 * dst_ld + i0, dst_ld, scale);
        for (size_t i = i0; i < i0 + 8; i++) {
            for (size_t j = full_cols; j < cols; j++) dst[j * dst_ld + i] = scale * src[i * src_ld + j];
        }
    }
    for (size_t i = full_rows; i < rows_pad; i++) {
        for (size_t j = 0; j < cols; j++) dst[j * dst_ld + i] = i < rows ? scale * src[i * src_ld + j] : 0;
    }
}

/* How many of the `limit` rows starting at `first` exist in a matrix of `rows` rows. */
static size_t rows_present(size_t first, size_t rows, size_t limit) {
    return first >= rows ? 0 : rows - first < limit ? rows - first : limit;
}

/* Rows [r0, r0 + count) of `src`, columns [k0, k0 + kc), into panels of `width`: dst[q][p][i] (panel stride
   `panel_stride`), zero for rows ≥ `rows`; whole 8 × 8 blocks in register transposes where the CPU has them. */
static void pack_rows_block(int path, const float *src, size_t ld, size_t rows, size_t k0, size_t kc, size_t width,
                            size_t r0, size_t count, float *dst, size_t panel_stride) {
    ck_transpose8 t = transpose8_for(path);
    size_t panels = (count + width - 1) / width;
    for (size_t q = 0; q < panels; q++) {
        size_t first = r0 + q * width;
        size_t present = rows_present(first, rows, width);
        const float *s = present > 0 ? src + first * ld + k0 : src;
        transpose_block(t, s, ld, present, width, kc, dst + q * panel_stride, width, 1);
    }
}

void ck_gemm_pack_rows(const float *src, size_t ld, size_t rows, size_t depth, size_t width, size_t panel_begin,
                       size_t panel_end, float *dst) {
    if (panel_end <= panel_begin) return;
    pack_rows_block(0, src, ld, rows, 0, depth, width, panel_begin * width, (panel_end - panel_begin) * width,
                    dst + panel_begin * depth * width, depth * width);
}

void ck_gemm_pack_rows_f16(const uint16_t *src, size_t ld, size_t rows, size_t depth, size_t width,
                           size_t panel_begin, size_t panel_end, float *dst) {
    /* Eight rows at a time: a chunk of each widened into `wide`, then transposed into the panel like float32. */
    enum { CHUNK = 512 };
    float wide[8 * CHUNK];
    ck_transpose8 t = transpose8_for(0);
    for (size_t q = panel_begin; q < panel_end; q++) {
        float *d = dst + q * depth * width;
        for (size_t g = 0; g < width; g += 8) {
            size_t first = q * width + g, lanes = width - g < 8 ? width - g : 8;
            size_t present = rows_present(first, rows, lanes);
            for (size_t p0 = 0; p0 < depth; p0 += CHUNK) {
                size_t n = depth - p0 < CHUNK ? depth - p0 : CHUNK;
                for (size_t i = 0; i < present; i++) cf16_widen(src + (first + i) * ld + p0, wide + i * CHUNK, n);
                transpose_block(t, wide, CHUNK, present, lanes, n, d + p0 * width + g, width, 1);
            }
        }
    }
}

void ck_gemm_unpack_rows(const float *src, size_t rows, size_t depth, size_t width, float *dst, size_t ld) {
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + (r / width) * depth * width + r % width;
        float *d = dst + r * ld;
        for (size_t p = 0; p < depth; p++) d[p] = s[p * width];
    }
}

/* Columns [n0, n0 + nc) of rows [k0, k0 + kc) of the row-major `b` into panels of `width` columns and `kc_pad` ≥ kc
   rows, dst[q][p][j] (panel stride kc_pad · width), zero beyond the matrix: B's blocks (width NR) and attention's
   transposed values (width MR, rows padded to whole key panels). */
static void pack_columns(const float *b, size_t ldb, size_t k0, size_t kc, size_t kc_pad, size_t n0, size_t nc,
                         size_t width, float *dst) {
    size_t panels = (nc + width - 1) / width;
    for (size_t p = 0; p < kc_pad; p++) {
        for (size_t q = 0; q < panels; q++) {
            float *d = dst + q * kc_pad * width + p * width;
            size_t cols = p >= kc ? 0 : nc - q * width < width ? nc - q * width : width;
            const float *src = b + (k0 + p) * ldb + n0 + q * width;
            /* Whole panels with a constant size, so the copy is inlined (attention packs Vᵀ 8 floats at a time). */
            if (cols == MR && width == MR) {
                memcpy(d, src, MR * sizeof(float));
                continue;
            }
            if (cols == NR && width == NR) {
                memcpy(d, src, NR * sizeof(float));
                continue;
            }
            if (cols > 0) memcpy(d, src, cols * sizeof(float));
            if (cols < width) memset(d + cols, 0, (width - cols) * sizeof(float));
        }
    }
}

/* The sigmoid gate on a stored tile, while it is in L1. */
static void gate_tile(int path, float *c, size_t ldc, size_t rows, size_t cols, float gate) {
    for (size_t i = 0; i < rows; i++) ck_sigmoid_gate(path, c + i * ldc, cols, gate);
}

/* What the tile of C at offset `at` adds its product to: the partial sums already there after the first depth
   block, else the addend (NULL: nothing). */
static const float *tile_source(const float *c, const float *addend, size_t at, size_t pc) {
    return pc > 0 ? c + at : addend ? addend + at : NULL;
}

size_t ck_gemm_workspace_count(void) { return (size_t)MC * KC + (size_t)NC * KC + 16; }

void ck_sgemm(int path, size_t m, size_t n, size_t k, const float *a, size_t lda, int a_packed, const float *b,
              size_t ldb, int b_packed, float *c, size_t ldc, const float *addend, const float *row_bias,
              const float *col_bias, float gate, size_t m_begin, size_t m_end, size_t n_begin, size_t n_end,
              float *workspace) {
    if (m_end > m) m_end = m;
    if (n_end > n) n_end = n;
    if (m_begin >= m_end || n_begin >= n_end) return;
    if (k == 0) {
        for (size_t i = m_begin; i < m_end; i++) {
            for (size_t j = n_begin; j < n_end; j++) {
                float v = (row_bias ? row_bias[i] : 0) + (col_bias ? col_bias[j] : 0);
                c[i * ldc + j] = addend ? addend[i * ldc + j] + v : v;
            }
            if (gate != 0) ck_sigmoid_gate(path, c + i * ldc + n_begin, n_end - n_begin, gate);
        }
        return;
    }
    /* The packing buffers, 64-byte aligned within the workspace. */
    float *thread_a = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    float *thread_b = thread_a + (size_t)MC * KC;
    ck_kernel kernel = kernel_for(path);
    size_t depth_blocks = (k + KC - 1) / KC;
    size_t kc_even = (k + depth_blocks - 1) / depth_blocks;
    for (size_t jc = n_begin; jc < n_end; jc += NC) {
        size_t nc = n_end - jc < NC ? n_end - jc : NC;
        for (size_t pc = 0; pc < k; pc += kc_even) {
            size_t kc = k - pc < kc_even ? k - pc : kc_even;
            int last = pc + kc >= k;
            const float *bc;
            size_t b_step;
            if (b_packed) {
                bc = b + (jc / NR) * k * NR + pc * NR;
                b_step = k * NR;
            } else {
                pack_columns(b, ldb, pc, kc, kc, jc, nc, NR, thread_b);
                bc = thread_b;
                b_step = kc * NR;
            }
            for (size_t ic = m_begin; ic < m_end; ic += MC) {
                size_t mc = m_end - ic < MC ? m_end - ic : MC;
                const float *ac;
                size_t a_step;
#if CKG_X86
                if (!a_packed && kernel == kernel_avx512) {
                    /* A read in place, eight rows at a time (fewer in a last, partial panel). */
                    for (size_t ir = 0; ir < mc; ir += MR) {
                        size_t mr = mc - ir < MR ? mc - ir : MR;
                        const float *rb = (pc == 0 && row_bias) ? row_bias + ic + ir : NULL;
                        const float *rows = a + (ic + ir) * lda + pc;
                        for (size_t jr = 0; jr < nc; jr += NR) {
                            size_t nr = nc - jr < NR ? nc - jr : NR;
                            const float *cb = (pc == 0 && col_bias) ? col_bias + jc + jr : NULL;
                            size_t at = (ic + ir) * ldc + jc + jr;
                            float *ct = c + at;
                            kernel_avx512_rows(kc, rows, lda, bc + (jr / NR) * b_step, ct, ldc,
                                               tile_source(c, addend, at, pc), mr, nr, rb, cb);
                            if (last && gate != 0) gate_tile(path, ct, ldc, mr, nr, gate);
                        }
                    }
                    continue;
                }
#endif
                if (a_packed) {
                    ac = a + (ic / MR) * k * MR + pc * MR;
                    a_step = k * MR;
                } else {
                    pack_rows_block(path, a, lda, m, pc, kc, MR, ic, mc, thread_a, kc * MR);
                    ac = thread_a;
                    a_step = kc * MR;
                }
                for (size_t ir = 0; ir < mc; ir += MR) {
                    size_t mr = mc - ir < MR ? mc - ir : MR;
                    const float *rb = (pc == 0 && row_bias) ? row_bias + ic + ir : NULL;
                    for (size_t jr = 0; jr < nc; jr += NR) {
                        size_t nr = nc - jr < NR ? nc - jr : NR;
                        const float *cb = (pc == 0 && col_bias) ? col_bias + jc + jr : NULL;
                        size_t at = (ic + ir) * ldc + jc + jr;
                        float *ct = c + at;
                        kernel(kc, ac + (ir / MR) * a_step, bc + (jr / NR) * b_step, ct, ldc,
                               tile_source(c, addend, at, pc), mr, nr, rb, cb);
                        if (last && gate != 0) gate_tile(path, ct, ldc, mr, nr, gate);
                    }
                }
            }
        }
    }
}

/* ---- Attention on the GEMM kernel ---- */

/* Most keys per block of the online softmax: a block's scores (at most KB × NR floats, 40 KB) stay in L1/L2
   between the two products. The keys are split into equal blocks (multiples of MR), so no block is a sliver. */
#ifndef ATTN_KB
#define ATTN_KB 320
#endif

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

size_t ck_attention_packed_count(size_t keys, size_t d) { return round_up(keys, MR) * round_up(d, MR); }

void ck_attention_pack(int path, const float *k, const float *v, size_t keys, size_t d, size_t stride, float *kp,
                       float *vp) {
    size_t keys_pad = round_up(keys, MR);
    /* K: packed like a GEMM operand, each panel of MR keys transposed into [d][MR]. */
    pack_rows_block(path, k, stride, keys, 0, d, MR, 0, keys_pad, kp, d * MR);
    pack_columns(v, stride, 0, keys, keys_pad, 0, d, MR, vp);
}

size_t ck_attention_workspace_count(size_t d) {
    return d * NR + (size_t)ATTN_KB * NR + round_up(d, MR) * NR + 3 * NR + 16;
}

/* The attention's data movement, compiled for each vector width (plain multiplies: the same bits on each). */
#if CKG_X86
#define CKG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CKG_CLONES
#endif

/* Each of the `d` rows of `ot` times correction[j] in column j. */
CKG_CLONES static void scale_columns(float *ot, size_t d, const float *correction) {
    for (size_t p = 0; p < d; p++) {
        for (size_t j = 0; j < NR; j++) ot[p * NR + j] *= correction[j];
    }
}

/* out[j][p] = ot[p][j] · (1 / sum[j]) for the `rows` queries (ot is scaled in place). */
static void store_outputs(ck_transpose8 t, float *ot, size_t d, const float *sum, size_t rows, float *out,
                          size_t out_stride) {
    float inverse[NR];
    for (size_t j = 0; j < NR; j++) inverse[j] = 1 / sum[j];
    scale_columns(ot, d, inverse);
    transpose_block(t, ot, NR, d, d, rows, out, out_stride, 1);
}

void ck_attention_queries(int path, size_t keys, size_t d, const float *kp, const float *vp, const float *q,
                          size_t rows, size_t q_stride, float scale, float *out, size_t out_stride,
                          float *workspace) {
    if (rows == 0) return;
    if (rows > NR) rows = NR;
    size_t d_pad = round_up(d, MR), keys_pad = round_up(keys, MR);
    float *qt = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63); /* [d][NR]: scale · Qᵀ */
    float *s = qt + d * NR;                                              /* [ATTN_KB][NR]: Sᵀ, then Pᵀ */
    float *ot = s + (size_t)ATTN_KB * NR;                                /* [d_pad][NR]: Oᵀ */
    float *max = ot + d_pad * NR, *sum = max + NR, *correction = sum + NR;
    ck_transpose8 t = transpose8_for(path);
    /* qt[p][j] = scale · q[j][p] for the `rows` queries, 0 in the panel's other columns. */
    transpose_block(t, q, q_stride, rows, NR, d, qt, NR, scale);
    ck_kernel kernel = kernel_for(path);
    size_t blocks = (keys + ATTN_KB - 1) / ATTN_KB;
    size_t block = round_up((keys + blocks - 1) / blocks, MR);
    for (size_t k0 = 0; k0 < keys; k0 += block) {
        size_t kb = keys - k0 < block ? keys - k0 : block;
        size_t kb_pad = round_up(kb, MR);
        /* Sᵀ = K · (scale · Qᵀ), eight keys per register tile. */
        for (size_t r = 0; r < kb_pad; r += MR) {
            kernel(d, kp + (k0 + r) * d, qt, s + r * NR, NR, NULL, MR, NR, NULL, NULL);
        }
        ck_softmax_columns(path, s, kb, kb_pad, NR, max, sum, correction, k0 == 0);
        if (k0 > 0) {
            /* Earlier blocks were weighted by e^(x − old max): bring them to the new one. */
            scale_columns(ot, d, correction);
        }
        /* Oᵀ += Vᵀ · Pᵀ, eight head dimensions per register tile. */
        for (size_t p = 0; p < d_pad; p += MR) {
            float *tile = ot + p * NR;
            kernel(kb_pad, vp + p * keys_pad + k0 * MR, s, tile, NR, k0 > 0 ? tile : NULL, MR, NR, NULL, NULL);
        }
    }
    store_outputs(t, ot, d, sum, rows, out, out_stride);
}
