/* Helpers shared by the codec files; not part of the public header. */
#ifndef VARAUDIT_CODECS_COMMON_H
#define VARAUDIT_CODECS_COMMON_H
#include "image_codecs.h"
#include <stdarg.h>

/* Writes a printf-style message into err (truncating; NUL-terminated) and returns status. */
ic_status ic_fail(char *err, size_t err_cap, ic_status status, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Checks width × height against max_pixels and that × 3 fits size_t; writes the message on failure. */
ic_status ic_check_size(uint64_t width, uint64_t height, uint64_t max_pixels, char *err, size_t err_cap);

/* CRC-32 as PNG uses it (ISO 3309), continuing from `crc` (start with 0); bitwise, for short data. */
uint32_t ic_crc32(uint32_t crc, const uint8_t *data, size_t size);

/* A growable heap byte buffer for encoders. */
typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} ic_growbuf;

/* Appends; returns 0 when out of memory (the buffer is left as it was). */
int ic_growbuf_append(ic_growbuf *buf, const uint8_t *bytes, size_t count);

static inline uint32_t ic_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void ic_put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
#endif
