#ifndef VARAUDIT_IMAGE_CODECS_H
#define VARAUDIT_IMAGE_CODECS_H
/*
 * PNG (libpng) and JPEG (libjpeg-turbo) decoding to interleaved RGB8 and encoding from it.
 *
 * Conventions: every entry point returns an `ic_status`; on failure it writes a NUL-terminated message into
 * the caller's `err` buffer (`err_cap` bytes, may be 0). Neither library can abort the process: libjpeg and
 * libpng errors unwind with longjmp to the entry point, which frees what it allocated and returns.
 * Decoding is two-step: `*_read_header` gives the size (and refuses images over `max_pixels` from the
 * header alone), then `*_decode_rgb8` fills a caller buffer of exactly width × height × 3 bytes.
 * Encoded outputs are heap buffers released with `ic_buffer_free`; PNG text is an opaque `ic_text`
 * released with `ic_text_free`.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    IC_OK = 0,
    IC_ERR_INVALID_ARGUMENT = 1,
    IC_ERR_NOT_AN_IMAGE = 2,  /* magic bytes match neither PNG nor JPEG */
    IC_ERR_UNSUPPORTED = 3,   /* a valid image in a layout we do not convert */
    IC_ERR_TOO_LARGE = 4,     /* width × height over the caller's pixel limit */
    IC_ERR_CORRUPT = 5,       /* truncated or malformed data */
    IC_ERR_NO_MEMORY = 6,
} ic_status;

typedef enum {
    IC_FORMAT_UNKNOWN = 0,
    IC_FORMAT_PNG = 1,
    IC_FORMAT_JPEG = 2,
} ic_format;

/* The format named by the first bytes (PNG signature, JPEG SOI + marker). */
ic_format ic_detect_format(const uint8_t *data, size_t size);

/* Frees a buffer returned by an encoder (NULL is fine). */
void ic_buffer_free(uint8_t *buffer);

/* ---- PNG ---- */

/* Reads the IHDR only (no libpng, no allocation); IC_ERR_TOO_LARGE if width × height > max_pixels. */
ic_status ic_png_read_header(const uint8_t *data, size_t size, uint64_t max_pixels, uint32_t *width,
                             uint32_t *height, char *err, size_t err_cap);

/* Decodes to RGB8 as Pillow's `Image.open(f).convert("RGB")` does; `out_size` must be width × height × 3. */
ic_status ic_png_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t *out,
                             size_t out_size, char *err, size_t err_cap);

/* Encodes 8-bit RGB (non-interlaced) with `text_count` text chunks: tEXt when key and value are Latin-1
   (given as UTF-8 here; `latin1[i]` nonzero says so and the strings are already Latin-1 bytes),
   uncompressed iTXt otherwise. Keys must be 1–79 bytes. */
ic_status ic_png_encode_rgb8(const uint8_t *rgb, uint32_t width, uint32_t height, const char *const *keys,
                             const char *const *values, const int *latin1, size_t text_count,
                             uint8_t **out, size_t *out_size, char *err, size_t err_cap);

/* Text chunks (tEXt, zTXt, iTXt) of a PNG, wherever they are in the file, without decoding pixels.
   Keys and values are UTF-8 (Latin-1 tEXt/zTXt text is converted). */
typedef struct ic_text ic_text;
ic_status ic_png_read_text(const uint8_t *data, size_t size, ic_text **out, char *err, size_t err_cap);
size_t ic_text_count(const ic_text *text);
const char *ic_text_key(const ic_text *text, size_t index);
const char *ic_text_value(const ic_text *text, size_t index);
void ic_text_free(ic_text *text);

/* ---- JPEG ---- */

/* Reads the JPEG header (up to the first scan); IC_ERR_TOO_LARGE if width × height > max_pixels. */
ic_status ic_jpeg_read_header(const uint8_t *data, size_t size, uint64_t max_pixels, uint32_t *width,
                              uint32_t *height, char *err, size_t err_cap);

/* Decodes to RGB8 as Pillow does (islow DCT, fancy upsampling; gray replicated; CMYK/YCCK with Adobe
   polarity converted by Pillow's formula). A premature end of data is an error. */
ic_status ic_jpeg_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t *out,
                              size_t out_size, char *err, size_t err_cap);

/* Encodes 8-bit RGB as baseline JPEG (4:2:0, islow DCT, optimized Huffman tables); quality 1–100. */
ic_status ic_jpeg_encode_rgb8(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                              uint8_t **out, size_t *out_size, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
