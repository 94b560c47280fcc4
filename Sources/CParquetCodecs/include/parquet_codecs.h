#ifndef VARAUDIT_PARQUET_CODECS_H
#define VARAUDIT_PARQUET_CODECS_H
/*
 * The page codecs of Parquet files: snappy (libsnappy's C API), zstd (libzstd) and gzip (zlib).
 *
 * Every decompressor produces exactly `expected` bytes (the size the page header declares) or fails, with a
 * NUL-terminated message in `err` (`err_cap` bytes, may be 0), when the data is malformed or decompresses
 * to any other size. Nothing is allocated from sizes found in the compressed data: snappy data is validated
 * before the caller allocates; zstd and gzip stream into a buffer that grows with the output actually
 * produced, never past `expected`.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PQC_OK = 0,
    PQC_ERR_CORRUPT = 1,      /* malformed compressed data */
    PQC_ERR_SIZE = 2,         /* decompresses to a size other than `expected` */
    PQC_ERR_NO_MEMORY = 3,
} pqc_status;

/* Checks that `src` is valid snappy data of exactly `expected` bytes once decompressed (no allocation). */
pqc_status pqc_snappy_check(const uint8_t *src, size_t src_len, size_t expected, char *err, size_t err_cap);
/* Decompresses checked snappy data into `dst` (`expected` bytes). */
pqc_status pqc_snappy_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t expected, char *err,
                                 size_t err_cap);
/* Decompresses a zstd stream (one or more frames) into a new buffer `*out` of `expected` bytes (release it
   with pqc_free; NULL when `expected` is 0). */
pqc_status pqc_zstd_decompress(const uint8_t *src, size_t src_len, size_t expected, uint8_t **out, char *err,
                               size_t err_cap);
/* Decompresses a gzip (or zlib) stream, members one after another, into a new buffer `*out` of `expected`
   bytes (release it with pqc_free; NULL when `expected` is 0). */
pqc_status pqc_gzip_decompress(const uint8_t *src, size_t src_len, size_t expected, uint8_t **out, char *err,
                               size_t err_cap);
void pqc_free(void *buffer);

/* Upper bound of snappy's output for `src_len` input bytes. */
size_t pqc_snappy_max_compressed_length(size_t src_len);
/* Compresses into `dst` (at least pqc_snappy_max_compressed_length bytes); the size goes to `*dst_len`. */
pqc_status pqc_snappy_compress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t *dst_len);

#ifdef __cplusplus
}
#endif
#endif
