#include "codecs_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ic_status ic_fail(char *err, size_t err_cap, ic_status status, const char *format, ...) {
    if (err != NULL && err_cap > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(err, err_cap, format, args);
        va_end(args);
    }
    return status;
}

ic_status ic_check_size(uint64_t width, uint64_t height, uint64_t max_pixels, char *err, size_t err_cap) {
    if (width == 0 || height == 0) {
        return ic_fail(err, err_cap, IC_ERR_CORRUPT, "image has zero size (%llu×%llu)",
                       (unsigned long long)width, (unsigned long long)height);
    }
    /* width, height < 2^32, so the product fits 64 bits. */
    uint64_t pixels = width * height;
    if (pixels > max_pixels) {
        return ic_fail(err, err_cap, IC_ERR_TOO_LARGE,
                       "image is %llu×%llu = %llu pixels, over the pixel limit of %llu",
                       (unsigned long long)width, (unsigned long long)height, (unsigned long long)pixels,
                       (unsigned long long)max_pixels);
    }
    if (pixels > SIZE_MAX / 8) {
        return ic_fail(err, err_cap, IC_ERR_TOO_LARGE, "image is %llu×%llu pixels, too large to address",
                       (unsigned long long)width, (unsigned long long)height);
    }
    return IC_OK;
}

ic_format ic_detect_format(const uint8_t *data, size_t size) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (data == NULL) return IC_FORMAT_UNKNOWN;
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) return IC_FORMAT_PNG;
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return IC_FORMAT_JPEG;
    return IC_FORMAT_UNKNOWN;
}

void ic_buffer_free(uint8_t *buffer) { free(buffer); }

uint32_t ic_crc32(uint32_t crc, const uint8_t *data, size_t size) {
    /* Bitwise: only used on a few short chunks. */
    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

int ic_growbuf_append(ic_growbuf *buf, const uint8_t *bytes, size_t count) {
    if (count > SIZE_MAX - buf->size) return 0;
    if (buf->size + count > buf->capacity) {
        size_t capacity = buf->capacity < 4096 ? 4096 : buf->capacity;
        while (capacity < buf->size + count) {
            if (capacity > SIZE_MAX / 2) { capacity = buf->size + count; break; }
            capacity *= 2;
        }
        uint8_t *grown = realloc(buf->data, capacity);
        if (grown == NULL) return 0;
        buf->data = grown;
        buf->capacity = capacity;
    }
    memcpy(buf->data + buf->size, bytes, count);
    buf->size += count;
    return 1;
}
