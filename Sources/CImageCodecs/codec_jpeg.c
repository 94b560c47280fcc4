/*
 * JPEG through libjpeg-turbo (libjpeg 6.2 API).
 *
 * Decoding matches Pillow 13's `Image.open(f).convert("RGB")`, which also uses libjpeg-turbo with the
 * library defaults: JDCT_ISLOW, fancy upsampling, no block smoothing changes. Color handling:
 *   - 1 component (gray): replicated to RGB;
 *   - 3 components (YCbCr or Adobe RGB): libjpeg's RGB output;
 *   - 4 components (CMYK or YCCK): libjpeg's CMYK output, read with Adobe polarity (inverted), as Pillow's
 *     rawmode "CMYK;I" always does, then Pillow's cmyk2rgb:  nk = 255 − k;  r = nk − muldiv255(c, nk)
 *     with muldiv255(a, b) = ((t >> 8) + t) >> 8, t = a·b + 128.
 * EXIF orientation is not applied (Pillow's convert does not either).
 *
 * Errors: `error_exit` formats the message and longjmps to the entry point. Warnings are ignored as
 * Pillow ignores them, except a premature end of data (JWRN_JPEG_EOF) before every output row was
 * produced, which is an error: a truncated file never yields a partial image.
 */
#include "codecs_common.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int rows_done;  /* set once all output rows are read; later EOF warnings are harmless */
} jpeg_failure;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, failure->message);
    longjmp(failure->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    jpeg_failure *failure = (jpeg_failure *)cinfo->err;
    if (level < 0) {
        if (cinfo->err->msg_code == JWRN_JPEG_EOF && !failure->rows_done) {
            (*cinfo->err->format_message)(cinfo, failure->message);
            longjmp(failure->jump, 1);
        }
        cinfo->err->num_warnings++;
    }
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void install_failure(jpeg_failure *failure) {
    memset(failure, 0, sizeof *failure);
    jpeg_std_error(&failure->manager);
    failure->manager.error_exit = on_error_exit;
    failure->manager.emit_message = on_emit_message;
    failure->manager.output_message = on_output_message;
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure failure;
    uint8_t *row;  /* gray/CMYK scanline */
} jpeg_read_job;

static ic_status jpeg_header_body(jpeg_read_job *job, const uint8_t *data, size_t size, uint64_t max_pixels,
                                  char *err, size_t err_cap) {
    jpeg_mem_src(&job->cinfo, data, (unsigned long)size);
    jpeg_read_header(&job->cinfo, TRUE);
    return ic_check_size(job->cinfo.image_width, job->cinfo.image_height, max_pixels, err, err_cap);
}

static inline uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static ic_status jpeg_decode_body(jpeg_read_job *job, const uint8_t *data, size_t size, uint64_t max_pixels,
                                  uint8_t *out, size_t out_size, char *err, size_t err_cap) {
    ic_status status = jpeg_header_body(job, data, size, max_pixels, err, err_cap);
    if (status != IC_OK) return status;
    struct jpeg_decompress_struct *cinfo = &job->cinfo;
    const size_t width = cinfo->image_width, height = cinfo->image_height;
    if (out_size != width * height * 3) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "output buffer must be %zu bytes, got %zu",
                       width * height * 3, out_size);
    }
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case JCS_YCbCr:
    case JCS_RGB: cinfo->out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo->out_color_space = JCS_CMYK; break;
    default:
        return ic_fail(err, err_cap, IC_ERR_UNSUPPORTED, "unsupported JPEG color space (%d components)",
                       cinfo->num_components);
    }
    jpeg_start_decompress(cinfo);
    const int components = cinfo->output_components;
    if (cinfo->output_width != width || cinfo->output_height != height ||
        components != (cinfo->out_color_space == JCS_GRAYSCALE ? 1 : cinfo->out_color_space == JCS_RGB ? 3 : 4)) {
        return ic_fail(err, err_cap, IC_ERR_UNSUPPORTED, "unexpected JPEG output layout");
    }
    if (components != 3) {
        job->row = malloc(width * (size_t)components);
        if (job->row == NULL) return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        uint8_t *target = out + (size_t)cinfo->output_scanline * width * 3;
        JSAMPROW row = components == 3 ? target : job->row;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            return ic_fail(err, err_cap, IC_ERR_CORRUPT, "JPEG decoder stalled");
        }
        if (components == 1) {
            for (size_t x = 0; x < width; x++) target[3 * x] = target[3 * x + 1] = target[3 * x + 2] = row[x];
        } else if (components == 4) {
            for (size_t x = 0; x < width; x++) {
                const uint8_t *p = row + 4 * x;
                /* Adobe polarity: stored values are inverted. */
                unsigned c = 255u - p[0], m = 255u - p[1], y = 255u - p[2], nk = p[3];
                target[3 * x] = (uint8_t)(nk - muldiv255(c, nk));
                target[3 * x + 1] = (uint8_t)(nk - muldiv255(m, nk));
                target[3 * x + 2] = (uint8_t)(nk - muldiv255(y, nk));
            }
        }
    }
    job->failure.rows_done = 1;
    return IC_OK;
}

/* Reads a JPEG's header and, when `out` is given, its pixels; libjpeg's errors longjmp back here. */
static ic_status jpeg_read(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t *out, size_t out_size,
                           uint32_t *width, uint32_t *height, char *err, size_t err_cap) {
    if (ic_detect_format(data, size) != IC_FORMAT_JPEG) {
        return ic_fail(err, err_cap, IC_ERR_NOT_AN_IMAGE, "not a JPEG image (bad signature)");
    }
    jpeg_read_job job;
    memset(&job, 0, sizeof job);
    install_failure(&job.failure);
    job.cinfo.err = &job.failure.manager;
    ic_status status;
    if (setjmp(job.failure.jump)) {
        status = ic_fail(err, err_cap, IC_ERR_CORRUPT, "invalid JPEG: %s", job.failure.message);
    } else {
        jpeg_create_decompress(&job.cinfo);
        status = out != NULL ? jpeg_decode_body(&job, data, size, max_pixels, out, out_size, err, err_cap)
                             : jpeg_header_body(&job, data, size, max_pixels, err, err_cap);
        if (status == IC_OK && width != NULL && height != NULL) {
            *width = job.cinfo.image_width;
            *height = job.cinfo.image_height;
        }
    }
    /* No jpeg_finish_decompress: trailing data after the last row (even a missing EOI) is not needed. */
    jpeg_destroy_decompress(&job.cinfo);
    free(job.row);
    return status;
}

ic_status ic_jpeg_read_header(const uint8_t *data, size_t size, uint64_t max_pixels, uint32_t *width,
                              uint32_t *height, char *err, size_t err_cap) {
    if (data == NULL || width == NULL || height == NULL) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "missing argument");
    }
    return jpeg_read(data, size, max_pixels, NULL, 0, width, height, err, err_cap);
}

ic_status ic_jpeg_decode_rgb8(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t *out,
                              size_t out_size, char *err, size_t err_cap) {
    if (data == NULL || out == NULL) return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "missing argument");
    return jpeg_read(data, size, max_pixels, out, out_size, NULL, NULL, err, err_cap);
}

/* ---- encoding ---- */

typedef struct {
    struct jpeg_destination_mgr manager;
    ic_growbuf output;
    uint8_t chunk[16384];
} jpeg_sink;

static void sink_init(j_compress_ptr cinfo) {
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    sink->manager.next_output_byte = sink->chunk;
    sink->manager.free_in_buffer = sizeof sink->chunk;
}

static boolean sink_empty(j_compress_ptr cinfo) {
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    if (!ic_growbuf_append(&sink->output, sink->chunk, sizeof sink->chunk)) ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
    sink->manager.next_output_byte = sink->chunk;
    sink->manager.free_in_buffer = sizeof sink->chunk;
    return TRUE;
}

static void sink_term(j_compress_ptr cinfo) {
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    size_t used = sizeof sink->chunk - sink->manager.free_in_buffer;
    if (!ic_growbuf_append(&sink->output, sink->chunk, used)) ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
}

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_failure failure;
    jpeg_sink sink;
} jpeg_write_job;

static void jpeg_encode_body(jpeg_write_job *job, const uint8_t *rgb, uint32_t width, uint32_t height,
                             int quality) {
    struct jpeg_compress_struct *cinfo = &job->cinfo;
    job->sink.manager.init_destination = sink_init;
    job->sink.manager.empty_output_buffer = sink_empty;
    job->sink.manager.term_destination = sink_term;
    cinfo->dest = &job->sink.manager;
    cinfo->image_width = width;
    cinfo->image_height = height;
    cinfo->input_components = 3;
    cinfo->in_color_space = JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    cinfo->optimize_coding = TRUE;
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo->next_scanline * width * 3);
        jpeg_write_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_compress(cinfo);
}

ic_status ic_jpeg_encode_rgb8(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                              uint8_t **out, size_t *out_size, char *err, size_t err_cap) {
    if (rgb == NULL || out == NULL || out_size == NULL) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "missing argument");
    }
    *out = NULL;
    *out_size = 0;
    if (width == 0 || height == 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "cannot encode a %u×%u JPEG (at most %d per side)",
                       width, height, (int)JPEG_MAX_DIMENSION);
    }
    if (quality < 1 || quality > 100) {
        return ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "JPEG quality must be 1–100, got %d", quality);
    }
    jpeg_write_job *job = calloc(1, sizeof *job);
    if (job == NULL) return ic_fail(err, err_cap, IC_ERR_NO_MEMORY, "out of memory");
    install_failure(&job->failure);
    job->cinfo.err = &job->failure.manager;
    ic_status status = IC_OK;
    if (setjmp(job->failure.jump)) {
        status = ic_fail(err, err_cap, IC_ERR_INVALID_ARGUMENT, "JPEG encoding failed: %s", job->failure.message);
    } else {
        jpeg_create_compress(&job->cinfo);
        jpeg_encode_body(job, rgb, width, height, quality);
    }
    jpeg_destroy_compress(&job->cinfo);
    if (status == IC_OK) {
        *out = job->sink.output.data;
        *out_size = job->sink.output.size;
    } else {
        free(job->sink.output.data);
    }
    free(job);
    return status;
}
