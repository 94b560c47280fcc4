#ifndef VARAUDIT_CFAISS_H
#define VARAUDIT_CFAISS_H
/*
 * A small C ABI over faiss 1.7.3 (Debian's static libfaiss.a ships no C API).
 *
 * Conventions (after faiss's own c_api/error_c.h):
 * - Indices are opaque handles; each kind has a `_free`.
 * - Every entry point that can fail returns a status: 0 = success, -1 = faiss threw (FaissException),
 *   -2 = another std::exception, -3 = an unknown exception, -4 = bad argument. The message of the last
 *   failure on the calling thread is returned by `cfaiss_last_error()` (thread-local; valid until the next
 *   failing call on that thread).
 * - Getters that cannot fail return their value directly.
 */
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/// faiss's version string (e.g. "1.7.3").
const char *cfaiss_version(void);

/// The message of the last failed call on this thread ("" if none).
const char *cfaiss_last_error(void);

/// Metric values, equal to faiss::MetricType.
enum { CFAISS_METRIC_INNER_PRODUCT = 0, CFAISS_METRIC_L2 = 1 };

/// Read flag: memory-map the inverted lists of IVF indices from the file instead of loading them
/// (faiss::IO_FLAG_MMAP; other index types are loaded normally).
enum { CFAISS_IO_FLAG_MMAP = 0x646f0008, CFAISS_IO_FLAG_READ_ONLY = 2 };

typedef struct cfaiss_index cfaiss_index;
typedef struct cfaiss_binary_index cfaiss_binary_index;

// ---- float indices -------------------------------------------------------------------------------

/// faiss::index_factory(d, description, metric).
int cfaiss_index_factory(cfaiss_index **out, int d, const char *description, int metric);
/// faiss::read_index(path, flags).
int cfaiss_index_read(cfaiss_index **out, const char *path, int io_flags);
/// faiss::write_index(index, path).
int cfaiss_index_write(const cfaiss_index *index, const char *path);
void cfaiss_index_free(cfaiss_index *index);

int cfaiss_index_train(cfaiss_index *index, int64_t n, const float *x);
int cfaiss_index_add(cfaiss_index *index, int64_t n, const float *x);
/// Searches n queries; distances and labels hold n × k values (label -1 where fewer than k were found).
int cfaiss_index_search(
    const cfaiss_index *index, int64_t n, const float *x, int64_t k, float *distances, int64_t *labels);
/// Reconstructs the stored vector `key` into `out` (d floats); for IVF indices a direct map is built on
/// first use.
int cfaiss_index_reconstruct(cfaiss_index *index, int64_t key, float *out);
/// Reconstructs ids i0 ..< i0 + ni into `out` (ni × d floats); needs no direct map.
int cfaiss_index_reconstruct_n(const cfaiss_index *index, int64_t i0, int64_t ni, float *out);

/// Sets a search-time parameter by name through faiss::ParameterSpace ("nprobe", "efSearch", ...);
/// reaches through IndexPreTransform, IndexIDMap and refine wrappers.
int cfaiss_index_set_parameter(cfaiss_index *index, const char *name, double value);

int64_t cfaiss_index_ntotal(const cfaiss_index *index);
int cfaiss_index_d(const cfaiss_index *index);
int cfaiss_index_metric(const cfaiss_index *index);
int cfaiss_index_is_trained(const cfaiss_index *index);
/// The IVF index inside (through wrappers): its nlist and nprobe, or 0 when there is none.
int64_t cfaiss_index_nlist(const cfaiss_index *index);
int64_t cfaiss_index_nprobe(const cfaiss_index *index);
/// efSearch of an HNSW index (through IndexPreTransform), or 0 when there is none.
int64_t cfaiss_index_ef_search(const cfaiss_index *index);
/// Writes the (demangled, faiss:: stripped) class name of the index and of what it wraps, e.g.
/// "IndexPreTransform(IndexIVFPQ)", into buf (NUL-terminated, truncated to len).
void cfaiss_index_type_name(const cfaiss_index *index, char *buf, size_t len);

// ---- binary indices (Hamming) ---------------------------------------------------------------------

/// faiss::IndexBinaryFlat over d bits (d a multiple of 8).
int cfaiss_binary_index_flat(cfaiss_binary_index **out, int d);
/// faiss::index_binary_factory(d, description).
int cfaiss_binary_index_factory(cfaiss_binary_index **out, int d, const char *description);
int cfaiss_binary_index_read(cfaiss_binary_index **out, const char *path, int io_flags);
int cfaiss_binary_index_write(const cfaiss_binary_index *index, const char *path);
void cfaiss_binary_index_free(cfaiss_binary_index *index);
int cfaiss_binary_index_train(cfaiss_binary_index *index, int64_t n, const uint8_t *x);
/// Adds n codes of d/8 bytes each.
int cfaiss_binary_index_add(cfaiss_binary_index *index, int64_t n, const uint8_t *x);
/// k nearest codes by Hamming distance; distances and labels hold n × k values.
int cfaiss_binary_index_search(
    const cfaiss_binary_index *index, int64_t n, const uint8_t *x, int64_t k, int32_t *distances,
    int64_t *labels);
int64_t cfaiss_binary_index_ntotal(const cfaiss_binary_index *index);
int cfaiss_binary_index_d(const cfaiss_binary_index *index);

#ifdef __cplusplus
}
#endif
#endif
