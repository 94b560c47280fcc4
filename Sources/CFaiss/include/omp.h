/*
 * Stand-in for <omp.h>, for compiling cfaiss.cpp only (not part of the CFaiss module map).
 *
 * faiss's impl/HNSW.h includes <omp.h> but only names omp_lock_t in declarations. Swift's clang has no
 * omp.h of its own and does not search GCC's private include directory, so this declares the libgomp
 * type and the few functions faiss's headers may name, with libgomp's layout (gcc/libgomp/omp.h.in).
 * libfaiss.a itself is compiled against GCC's real header and links libgomp.
 */
#ifndef VARAUDIT_CFAISS_OMP_SHIM_H
#define VARAUDIT_CFAISS_OMP_SHIM_H
#ifdef __cplusplus
extern "C" {
#endif
typedef struct {
    unsigned char _x[4];
} __attribute__((__aligned__(4))) omp_lock_t;
int omp_get_max_threads(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
void omp_set_num_threads(int);
int omp_in_parallel(void);
void omp_init_lock(omp_lock_t *);
void omp_destroy_lock(omp_lock_t *);
void omp_set_lock(omp_lock_t *);
void omp_unset_lock(omp_lock_t *);
#ifdef __cplusplus
}
#endif
#endif
