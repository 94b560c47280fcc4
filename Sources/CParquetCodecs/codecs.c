#include "parquet_codecs.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static void set_error(char *err, size_t err_cap, const char *message) {
    if (err == NULL || err_cap == 0) return;
    snprintf(err, err_cap, "%s", message);
}

static pqc_status size_error(char *err, size_t err_cap, const char *codec, const char *what, size_t expected) {
    char message[200];
    snprintf(message, sizeof message, "%s: data decompresses to %s the %zu bytes the page header says", codec, what,
             expected);
    set_error(err, err_cap, message);
    return PQC_ERR_SIZE;
}

pqc_status pqc_snappy_check(const uint8_t *src, size_t src_len, size_t expected, char *err, size_t err_cap) {
    size_t length = 0;
    if (snappy_uncompressed_length((const char *)src, src_len, &length) != SNAPPY_OK) {
        set_error(err, err_cap, "snappy: malformed length header");
        return PQC_ERR_CORRUPT;
    }
    if (length != expected) {
        char message[160];
        snprintf(message, sizeof message, "snappy: data decompresses to %zu bytes, the page header says %zu",
                 length, expected);
        set_error(err, err_cap, message);
        return PQC_ERR_SIZE;
    }
    if (snappy_validate_compressed_buffer((const char *)src, src_len) != SNAPPY_OK) {
        set_error(err, err_cap, "snappy: corrupt compressed data");
        return PQC_ERR_CORRUPT;
    }
    return PQC_OK;
}

pqc_status pqc_snappy_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t expected, char *err,
                                 size_t err_cap) {
    size_t out_len = expected;
    if (snappy_uncompress((const char *)src, src_len, (char *)dst, &out_len) != SNAPPY_OK || out_len != expected) {
        set_error(err, err_cap, "snappy: corrupt compressed data");
        return PQC_ERR_CORRUPT;
    }
    return PQC_OK;
}

/* A buffer that grows (doubling, from at most 1 MiB) as output arrives, never past `limit` bytes. */
typedef struct {
    uint8_t *data;
    size_t size;     /* bytes produced */
    size_t capacity;
    size_t limit;
} growing_buffer;

/* Makes room for more output; 0 when the buffer is full at its limit, -1 when out of memory. */
static int grow(growing_buffer *b) {
    if (b->capacity >= b->limit) return 0;
    size_t next = b->capacity == 0 ? 1u << 20 : b->capacity * 2;
    if (next > b->limit || next < b->capacity) next = b->limit;
    uint8_t *data = realloc(b->data, next);
    if (data == NULL) return -1;
    b->data = data;
    b->capacity = next;
    return 1;
}

pqc_status pqc_zstd_decompress(const uint8_t *src, size_t src_len, size_t expected, uint8_t **out, char *err,
                               size_t err_cap) {
    *out = NULL;
    unsigned long long declared = ZSTD_getFrameContentSize(src, src_len);
    if (declared == ZSTD_CONTENTSIZE_ERROR) {
        set_error(err, err_cap, "zstd: not a zstd frame");
        return PQC_ERR_CORRUPT;
    }
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > (unsigned long long)expected) {
        return size_error(err, err_cap, "zstd", "more than", expected);
    }
    ZSTD_DStream *stream = ZSTD_createDStream();
    if (stream == NULL) {
        set_error(err, err_cap, "zstd: out of memory");
        return PQC_ERR_NO_MEMORY;
    }
    growing_buffer b = {NULL, 0, 0, expected};
    ZSTD_inBuffer in = {src, src_len, 0};
    pqc_status status = PQC_OK;
    size_t last = 1;
    char message[200];
    for (;;) {
        if (b.size == b.capacity) {
            int grown = grow(&b);
            if (grown < 0) {
                set_error(err, err_cap, "zstd: out of memory");
                status = PQC_ERR_NO_MEMORY;
                break;
            }
            if (grown == 0) {
                /* Full at the declared size: whatever still comes out is too much. */
                uint8_t probe;
                while (!(in.pos == in.size && last == 0)) {
                    size_t before = in.pos;
                    ZSTD_outBuffer extra = {&probe, 1, 0};
                    size_t r = ZSTD_decompressStream(stream, &extra, &in);
                    if (ZSTD_isError(r)) {
                        snprintf(message, sizeof message, "zstd: %s", ZSTD_getErrorName(r));
                        set_error(err, err_cap, message);
                        status = PQC_ERR_CORRUPT;
                        break;
                    }
                    if (extra.pos > 0) {
                        status = size_error(err, err_cap, "zstd", "more than", expected);
                        break;
                    }
                    if (in.pos == before) break; /* no progress: `last` says whether the frame ended */
                    last = r;
                }
                break;
            }
        }
        size_t in_before = in.pos, out_before = b.size;
        ZSTD_outBuffer output = {b.data, b.capacity, b.size};
        last = ZSTD_decompressStream(stream, &output, &in);
        b.size = output.pos;
        if (ZSTD_isError(last)) {
            snprintf(message, sizeof message, "zstd: %s", ZSTD_getErrorName(last));
            set_error(err, err_cap, message);
            status = PQC_ERR_CORRUPT;
            break;
        }
        if (in.pos == in.size && output.pos < output.size) break;
        if (in.pos == in_before && output.pos == out_before) {
            set_error(err, err_cap, "zstd: the decoder makes no progress (corrupt data)");
            status = PQC_ERR_CORRUPT;
            break;
        }
    }
    ZSTD_freeDStream(stream);
    if (status == PQC_OK && last != 0) {
        set_error(err, err_cap, "zstd: truncated data (the frame does not end)");
        status = PQC_ERR_CORRUPT;
    }
    if (status == PQC_OK && b.size != expected) status = size_error(err, err_cap, "zstd", "fewer than", expected);
    if (status != PQC_OK) {
        free(b.data);
        return status;
    }
    *out = b.data;
    return PQC_OK;
}

pqc_status pqc_gzip_decompress(const uint8_t *src, size_t src_len, size_t expected, uint8_t **out, char *err,
                               size_t err_cap) {
    *out = NULL;
    growing_buffer b = {NULL, 0, 0, expected};
    size_t consumed = 0;
    pqc_status status = PQC_OK;
    /* Members one after another until the input is used up (zero padding after the last is tolerated). */
    while (consumed < src_len && status == PQC_OK) {
        z_stream stream;
        memset(&stream, 0, sizeof stream);
        if (inflateInit2(&stream, 15 + 32) != Z_OK) {
            set_error(err, err_cap, "gzip: cannot initialize zlib");
            status = PQC_ERR_NO_MEMORY;
            break;
        }
        size_t in_left = src_len - consumed;
        stream.next_in = (Bytef *)(src + consumed);
        stream.avail_in = in_left > 0x3fffffffu ? 0x3fffffffu : (uInt)in_left;
        int code = Z_OK;
        while (code != Z_STREAM_END) {
            if (b.size == b.capacity) {
                int grown = grow(&b);
                if (grown < 0) {
                    set_error(err, err_cap, "gzip: out of memory");
                    status = PQC_ERR_NO_MEMORY;
                    break;
                }
                if (grown == 0) {
                    uint8_t probe;
                    stream.next_out = &probe;
                    stream.avail_out = 1;
                    code = inflate(&stream, Z_NO_FLUSH);
                    if (stream.avail_out == 0) {
                        status = size_error(err, err_cap, "gzip", "more than", expected);
                    } else if (code != Z_STREAM_END) {
                        char message[200];
                        snprintf(message, sizeof message, "gzip: %s",
                                 stream.msg ? stream.msg : "truncated or corrupt data");
                        set_error(err, err_cap, message);
                        status = PQC_ERR_CORRUPT;
                    }
                    break;
                }
            }
            size_t room = b.capacity - b.size;
            stream.next_out = b.data + b.size;
            stream.avail_out = room > 0x3fffffffu ? 0x3fffffffu : (uInt)room;
            uInt before = stream.avail_out;
            code = inflate(&stream, Z_NO_FLUSH);
            b.size += before - stream.avail_out;
            if (code == Z_STREAM_END) break;
            if (code != Z_OK && !(code == Z_BUF_ERROR && stream.avail_out == 0)) {
                char message[200];
                snprintf(message, sizeof message, "gzip: %s", stream.msg ? stream.msg : "truncated or corrupt data");
                set_error(err, err_cap, message);
                status = PQC_ERR_CORRUPT;
                break;
            }
            if (stream.avail_in == 0 && stream.avail_out > 0) {
                set_error(err, err_cap, "gzip: truncated data (the stream does not end)");
                status = PQC_ERR_CORRUPT;
                break;
            }
        }
        size_t used = (size_t)stream.total_in;
        inflateEnd(&stream);
        if (status != PQC_OK) break;
        consumed += used;
        if (used == 0) break;
        size_t k = consumed;
        while (k < src_len && src[k] == 0) k++;
        if (k == src_len) break;
    }
    if (status == PQC_OK && b.size != expected) status = size_error(err, err_cap, "gzip", "fewer than", expected);
    if (status != PQC_OK) {
        free(b.data);
        return status;
    }
    *out = b.data;
    return PQC_OK;
}

void pqc_free(void *buffer) { free(buffer); }

size_t pqc_snappy_max_compressed_length(size_t src_len) { return snappy_max_compressed_length(src_len); }

pqc_status pqc_snappy_compress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t *dst_len) {
    return snappy_compress((const char *)src, src_len, (char *)dst, dst_len) == SNAPPY_OK ? PQC_OK
                                                                                         : PQC_ERR_CORRUPT;
}
