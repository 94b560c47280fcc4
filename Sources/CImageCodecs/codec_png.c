/*
 * PNG through libpng 1.6.
 *
 * Decoding matches Pillow 13's `Image.open(f).convert("RGB")` (checked against Pillow 13.0.0):
 *   - alpha (RGBA, gray+alpha) and tRNS transparency are dropped, never composited;
 *   - gray is replicated; 1/2/4-bit gray is scaled to 8 bits (×255, ×85, ×17);
 *   - palette indices (any bit depth) map through PLTE; indices past the end of PLTE give black;
 *   - 16-bit RGB, RGBA and gray+alpha keep the high byte of each sample (v >> 8);
 *   - 16-bit gray (no alpha) opens in Pillow as mode "I;16", whose conversion to RGB CLIPS to 255:
 *     min(v, 255), not v >> 8 and not v / 257. So a typical 16-bit gray photo becomes mostly white.
 *   - gAMA, sBIT, iCCP etc. are ignored (Pillow does not apply them either).
 * No libpng transformations are requested except interlace handling; the unpacking above is done here.
 *
 * Errors: libpng reports through `on_error`, which records the message and longjmps back to the entry
 * point; every allocation lives in a `png_job` so the entry point can free it on either path.
 */
#include "codecs_common.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

typedef struct {
    png_structp png;
    png_infop info;
    const uint8_t *data;  /* input */
    size_t size;
    size_t position;
    ic_growbuf output;    /* encoder output */
    uint8_t *pixels;      /* decoder row data */
    png_bytep *rows;
    png_textp texts;      /* encoder text */
    char message[256];
} png_job;

static void on_error(png_structp png, png_const_charp message) {
    png_job *job = (png_job *)png_get_error_ptr(png);
    snprintf(job->message, sizeof job->message, "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void on_read(png_structp png, png_bytep out, size_t count) {
    png_job *job = (png_job *)png_get_io_ptr(png);
    if (count > job->size - job->position) png_error(png, "truncated file (unexpected end of data)");
    memcpy(out, job->data + job->position, count);
    job->position += count;
}

static void on_write(png_structp png, png_bytep bytes, size_t count) {
    png_job *job = (png_job *)png_get_io_ptr(png);
    if (!ic_growbuf_append(&job->output, bytes, count)) png_error(png, "out of memory");
}

static void on_flush(png_structp png) { (void)png; }

static void png_job_free(png_job *job) {
    free(job->pixels);
    free(job->rows);
    free(job->texts);
    free(job->output.data);
    job->pixels = NULL;
    job->rows = NULL;
    job->texts = NULL;
    job->output.data = NULL;
}

ic_status ic_png_read_header(const uint8_t *data, size_t size, uint64_t max_pixels, uint32_t *width,
                             uint32_t *height, char *err, size_t err_cap) {
    if (data == NULL || width == NULL || height == NULL) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "missing argument");
    }
    if (size < 8 || memcmp(data, png_signature, 8) != 0) {
        return ic_fail(err, err_cap, IC_ERR_NOT_AN_IMAGE, "not a PNG image (bad signature)");
    }
    /* The IHDR must come first: length 13, type, 13 bytes, CRC. */
    if (size < 8 + 8 + 13 + 4) return ic_fail(err, err_cap, IC_ERR_CORRUPT, "truncated PNG header");
    const uint8_t *chunk = data + 8;
    if (ic_be32(chunk) != 13 || memcmp(chunk + 4, "IHDR", 4) != 0) {
        return ic_fail(err, err_cap, IC_ERR_CORRUPT, "PNG does not start with a valid IHDR chunk");
    }
    if (ic_crc32(0, chunk + 4, 4 + 13) != ic_be32(chunk + 8 + 13)) {
        return ic_fail(err, err_cap, IC_ERR_CORRUPT, "PNG IHDR chunk has a bad CRC");
    }
    uint32_t w = ic_be32(chunk + 8), h = ic_be32(chunk + 12);
    if (w > 0x7fffffffu || h > 0x7fffffffu) {
        return ic_fail(err, err_cap, IC_ERR_CORRUPT, "PNG IHDR has an invalid size %u×%u", w, h);
    }
    ic_status status = ic_check_size(w, h, max_pixels, err, err_cap);
    if (status != IC_OK) return status;
    *width = w;
    *height = h;
    return IC_OK;
}

/* One decoded row (raw PNG samples, `depth` bits each, `channels` per pixel) to RGB8. */
static void png_row_to_rgb(const uint8_t *row, uint8_t *out, uint32_t width, int color_type, int depth,
                           const uint8_t palette[256][3]) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth == 16) {
            for (uint32_t x = 0; x < width; x++) {
                unsigned v = ((unsigned)row[2 * x] << 8) | row[2 * x + 1];
                uint8_t g = v > 255 ? 255 : (uint8_t)v;  /* Pillow "I;16" → RGB clips */
                out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = g;
            }
        } else if (depth == 8) {
            for (uint32_t x = 0; x < width; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
        } else {
            const unsigned scale = depth == 1 ? 255 : depth == 2 ? 85 : 17;
            const unsigned mask = (1u << depth) - 1, per_byte = 8u / (unsigned)depth;
            for (uint32_t x = 0; x < width; x++) {
                unsigned shift = 8u - (unsigned)depth * (x % per_byte + 1);
                uint8_t g = (uint8_t)(((row[x / per_byte] >> shift) & mask) * scale);
                out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = g;
            }
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
        const size_t stride = depth == 16 ? 4 : 2;  /* high byte first for 16-bit */
        for (uint32_t x = 0; x < width; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[stride * x];
        break;
    }
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
        const size_t bytes = depth == 16 ? 2 : 1;
        const size_t stride = bytes * (color_type == PNG_COLOR_TYPE_RGB ? 3 : 4);
        for (uint32_t x = 0; x < width; x++) {
            const uint8_t *p = row + stride * x;
            out[3 * x] = p[0];
            out[3 * x + 1] = p[bytes];
            out[3 * x + 2] = p[2 * bytes];
        }
        break;
    }
    case PNG_COLOR_TYPE_PALETTE: {
        const unsigned mask = (1u << depth) - 1, per_byte = 8u / (unsigned)depth;
        for (uint32_t x = 0; x < width; x++) {
            unsigned index = depth == 8 ? row[x]
                                        : (row[x / per_byte] >> (8u - (unsigned)depth * (x % per_byte + 1))) & mask;
            memcpy(out + 3 * x, palette[index], 3);
        }
        break;
    }
    }
}

/* The body of a decode, run under the job's setjmp. */
static ic_status png_decode_body(png_job *job, uint32_t width, uint32_t height, uint8_t *out, char *err,
                                 size_t err_cap) {
    png_set_read_fn(job->png, job, on_read);
    png_read_info(job->png, job->info);
    png_uint_32 w, h;
    int depth, color_type, interlace;
    png_get_IHDR(job->png, job->info, &w, &h, &depth, &color_type, &interlace, NULL, NULL);
    if (w != width || h != height) {
        return ic_fail(err, err_cap, IC_ERR_CORRUPT, "PNG size changed between header reads");
    }
    uint8_t palette[256][3];
    memset(palette, 0, sizeof palette);  /* Pillow: indices past PLTE are black */
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp entries = NULL;
        int count = 0;
        if (png_get_PLTE(job->png, job->info, &entries, &count) != PNG_INFO_PLTE || count <= 0) {
            return ic_fail(err, err_cap, IC_ERR_CORRUPT, "palette PNG without a PLTE chunk");
        }
        for (int i = 0; i < count && i < 256; i++) {
            palette[i][0] = entries[i].red;
            palette[i][1] = entries[i].green;
            palette[i][2] = entries[i].blue;
        }
    }
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);
    size_t row_bytes = png_get_rowbytes(job->png, job->info);
    if (row_bytes == 0 || row_bytes > SIZE_MAX / height) {
        return ic_fail(err, err_cap, IC_ERR_TOO_LARGE, "PNG rows too large");
    }
    job->pixels = malloc(row_bytes * height);
    job->rows = malloc(sizeof(png_bytep) * height);
    if (job->pixels == NULL || job->rows == NULL) {
        return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory for a %u×%u PNG", width, height);
    }
    for (uint32_t y = 0; y < height; y++) job->rows[y] = job->pixels + row_bytes * y;
    png_read_image(job->png, job->rows);
    for (uint32_t y = 0; y < height; y++) {
        png_row_to_rgb(job->rows[y], out + (size_t)y * width * 3, width, color_type, depth,
                       (const uint8_t(*)[3])palette);
    }
    return IC_OK;
}

ic_status ic_png_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t *out,
                             size_t out_size, char *err, size_t err_cap) {
    uint32_t width, height;
    ic_status status = ic_png_read_header(data, size, max_pixels, &width, &height, err, err_cap);
    if (status != IC_OK) return status;
    if (out == NULL || out_size != (size_t)width * height * 3) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "output buffer must be %zu bytes, got %zu",
                       (size_t)width * height * 3, out_size);
    }
    png_job job;
    memset(&job, 0, sizeof job);
    job.data = data;
    job.size = size;
    job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
    if (job.png == NULL) return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "cannot create a PNG reader");
    job.info = png_create_info_struct(job.png);
    if (job.info == NULL) {
        png_destroy_read_struct(&job.png, NULL, NULL);
        return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "cannot create a PNG reader");
    }
    if (setjmp(png_jmpbuf(job.png))) {
        status = ic_fail(err, err_cap, IC_ERR_CORRUPT, "invalid PNG: %s", job.message);
    } else {
        status = png_decode_body(&job, width, height, out, err, err_cap);
    }
    png_destroy_read_struct(&job.png, &job.info, NULL);
    png_job_free(&job);
    return status;
}

/* ---- encoding ---- */

static ic_status png_encode_body(png_job *job, const uint8_t *rgb, uint32_t width, uint32_t height,
                                 const char *const *keys, const char *const *values, const int *latin1,
                                 size_t text_count, char *err, size_t err_cap) {
    png_set_write_fn(job->png, job, on_write, on_flush);
    png_set_IHDR(job->png, job->info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        job->texts = calloc(text_count, sizeof(png_text));
        if (job->texts == NULL) return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
        for (size_t i = 0; i < text_count; i++) {
            job->texts[i].compression = latin1[i] ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
            job->texts[i].key = (png_charp)keys[i];
            job->texts[i].text = (png_charp)values[i];
            job->texts[i].text_length = strlen(values[i]);
        }
        png_set_text(job->png, job->info, job->texts, (int)text_count);
    }
    png_write_info(job->png, job->info);
    job->rows = malloc(sizeof(png_bytep) * height);
    if (job->rows == NULL) return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
    for (uint32_t y = 0; y < height; y++) job->rows[y] = (png_bytep)(rgb + (size_t)y * width * 3);
    png_write_image(job->png, job->rows);
    png_write_end(job->png, NULL);
    return IC_OK;
}

ic_status ic_png_encode_rgb8(const uint8_t *rgb, uint32_t width, uint32_t height, const char *const *keys,
                             const char *const *values, const int *latin1, size_t text_count,
                             uint8_t **out, size_t *out_size, char *err, size_t err_cap) {
    if (rgb == NULL || out == NULL || out_size == NULL || (text_count > 0 && (keys == NULL || values == NULL ||
                                                                            latin1 == NULL))) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "missing argument");
    }
    *out = NULL;
    *out_size = 0;
    if (width == 0 || height == 0 || width > 0x7fffffffu || height > 0x7fffffffu) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "cannot encode a %u×%u PNG", width, height);
    }
    if (text_count > 0x7fffffff) return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "too many text chunks");
    for (size_t i = 0; i < text_count; i++) {
        size_t length = keys[i] == NULL ? 0 : strlen(keys[i]);
        if (length < 1 || length > 79 || values[i] == NULL) {
            return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "PNG text key %zu must be 1–79 bytes", i);
        }
    }
    png_job job;
    memset(&job, 0, sizeof job);
    job.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
    if (job.png == NULL) return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "cannot create a PNG writer");
    job.info = png_create_info_struct(job.png);
    if (job.info == NULL) {
        png_destroy_write_struct(&job.png, NULL);
        return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "cannot create a PNG writer");
    }
    ic_status status;
    if (setjmp(png_jmpbuf(job.png))) {
        status = ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "PNG encoding failed: %s", job.message);
    } else {
        status = png_encode_body(&job, rgb, width, height, keys, values, latin1, text_count, err, err_cap);
    }
    png_destroy_write_struct(&job.png, &job.info);
    if (status == IC_OK) {
        *out = job.output.data;
        *out_size = job.output.size;
        job.output.data = NULL;
    }
    png_job_free(&job);
    return status;
}

/* ---- text ---- */

struct ic_text {
    size_t count;
    char **keys;
    char **values;
};

void ic_text_free(ic_text *text) {
    if (text == NULL) return;
    for (size_t i = 0; i < text->count; i++) {
        free(text->keys[i]);
        free(text->values[i]);
    }
    free(text->keys);
    free(text->values);
    free(text);
}

size_t ic_text_count(const ic_text *text) { return text == NULL ? 0 : text->count; }

const char *ic_text_key(const ic_text *text, size_t index) {
    return text == NULL || index >= text->count ? NULL : text->keys[index];
}

const char *ic_text_value(const ic_text *text, size_t index) {
    return text == NULL || index >= text->count ? NULL : text->values[index];
}

/* A NUL-terminated copy, converting Latin-1 to UTF-8 when `latin1`. */
static char *copy_text(const char *bytes, size_t length, int latin1) {
    char *copy = malloc(length * (latin1 ? 2 : 1) + 1);
    if (copy == NULL) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (latin1 && c >= 0x80) {
            copy[n++] = (char)(0xc0 | (c >> 6));
            copy[n++] = (char)(0x80 | (c & 0x3f));
        } else {
            copy[n++] = (char)c;
        }
    }
    copy[n] = '\0';
    return copy;
}

/* Reads the text chunks of `mini` (a PNG holding only a 1×1 IHDR, the text chunks and a 1×1 IDAT). */
static ic_status png_text_body(png_job *job, ic_text *result, char *err, size_t err_cap) {
    png_set_read_fn(job->png, job, on_read);
    png_read_info(job->png, job->info);
    png_textp texts = NULL;
    int count = png_get_text(job->png, job->info, &texts, NULL);
    if (count <= 0) return IC_OK;
    result->keys = calloc((size_t)count, sizeof(char *));
    result->values = calloc((size_t)count, sizeof(char *));
    if (result->keys == NULL || result->values == NULL) {
        return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        int value_latin1 = texts[i].compression == PNG_TEXT_COMPRESSION_NONE ||
                           texts[i].compression == PNG_TEXT_COMPRESSION_zTXt;
        const char *value = texts[i].text == NULL ? "" : texts[i].text;
        size_t value_length = strlen(value);
        result->keys[i] = copy_text(texts[i].key, strlen(texts[i].key), 1);
        result->values[i] = copy_text(value, value_length, value_latin1);
        result->count = (size_t)i + 1;
        if (result->keys[i] == NULL || result->values[i] == NULL) {
            return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
        }
    }
    return IC_OK;
}

ic_status ic_png_read_text(const uint8_t *data, size_t size, ic_text **out, char *err, size_t err_cap) {
    if (out == NULL) return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "missing argument");
    *out = NULL;
    uint32_t width, height;
    ic_status status = ic_png_read_header(data, size, UINT64_MAX, &width, &height, err, err_cap);
    if (status != IC_OK) return status;

    /* Copy the text chunks, verbatim with their CRCs, into a minimal 1×1 gray PNG, and let libpng parse
       (and inflate) them there without touching the real image data. */
    static const uint8_t idat_data[] = {0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
    ic_growbuf mini = {0};
    uint8_t header[8 + 8 + 13 + 4];
    memcpy(header, png_signature, 8);
    ic_put_be32(header + 8, 13);
    memcpy(header + 12, "IHDR", 4);
    ic_put_be32(header + 16, 1);
    ic_put_be32(header + 20, 1);
    header[24] = 8;  /* depth */
    header[25] = 0;  /* gray */
    header[26] = header[27] = header[28] = 0;
    ic_put_be32(header + 29, ic_crc32(0, header + 12, 4 + 13));
    int ok = ic_growbuf_append(&mini, header, sizeof header);
    size_t position = 8;
    while (ok && position < size) {
        if (size - position < 12) { status = IC_ERR_CORRUPT; break; }
        uint32_t length = ic_be32(data + position);
        if (length > 0x7fffffffu || size - position - 12 < length) { status = IC_ERR_CORRUPT; break; }
        const uint8_t *type = data + position + 4;
        if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0) {
            ok = ic_growbuf_append(&mini, data + position, (size_t)length + 12);
        }
        position += (size_t)length + 12;
        if (memcmp(type, "IEND", 4) == 0) break;
    }
    if (status == IC_ERR_CORRUPT) {
        free(mini.data);
        return ic_fail(err, err_cap, IC_ERR_CORRUPT, "truncated PNG chunk at byte %zu", position);
    }
    uint8_t trailer[12 + sizeof idat_data + 12];
    ic_put_be32(trailer, sizeof idat_data);
    memcpy(trailer + 4, "IDAT", 4);
    memcpy(trailer + 8, idat_data, sizeof idat_data);
    ic_put_be32(trailer + 8 + sizeof idat_data, ic_crc32(0, trailer + 4, 4 + sizeof idat_data));
    uint8_t *iend = trailer + 12 + sizeof idat_data;
    ic_put_be32(iend, 0);
    memcpy(iend + 4, "IEND", 4);
    ic_put_be32(iend + 8, ic_crc32(0, iend + 4, 4));
    ok = ok && ic_growbuf_append(&mini, trailer, sizeof trailer);
    if (!ok) {
        free(mini.data);
        return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
    }

    ic_text *result = calloc(1, sizeof(ic_text));
    png_job job;
    memset(&job, 0, sizeof job);
    job.data = mini.data;
    job.size = mini.size;
    job.png = result == NULL ? NULL : png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
    job.info = job.png == NULL ? NULL : png_create_info_struct(job.png);
    if (job.info == NULL) {
        if (job.png != NULL) png_destroy_read_struct(&job.png, NULL, NULL);
        free(result);
        free(mini.data);
        return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "cannot create a PNG reader");
    }
    if (setjmp(png_jmpbuf(job.png))) {
        status = ic_fail(err, err_cap, IC_ERR_CORRUPT, "invalid PNG text: %s", job.message);
    } else {
        status = png_text_body(&job, result, err, err_cap);
    }
    png_destroy_read_struct(&job.png, &job.info, NULL);
    png_job_free(&job);
    free(mini.data);
    if (status != IC_OK) {
        ic_text_free(result);
        return status;
    }
    *out = result;
    return IC_OK;
}
