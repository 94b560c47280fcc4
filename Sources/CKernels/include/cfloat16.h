#ifndef VARAUDIT_CFLOAT16_H
#define VARAUDIT_CFLOAT16_H
/*
 * IEEE 754 binary16 (float16) <-> binary32 conversion of whole arrays.
 *
 * Widening is exact (normals, subnormals, infinities; NaNs stay NaNs with their sign and payload, quieted).
 * Narrowing rounds to nearest, ties to even, as torch's `.half()`: values from 65520 up become infinity,
 * values at or below 2^-25 become zero, subnormals are rounded, NaNs stay NaNs (quieted, payload truncated).
 *
 * The plain functions use F16C (vcvtph2ps / vcvtps2ph, 8 values at a time) when the CPU has it, checked at run
 * time, and a portable scalar loop otherwise; both give the same bits. The `_scalar` versions always take the
 * portable path (for tests on machines with F16C). Arrays may have any alignment and must not overlap.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Widens `count` float16 values (bit patterns) at `src` into `dst`. */
void cf16_widen(const uint16_t *src, float *dst, size_t count);
/* Narrows `count` float32 values at `src` into float16 bit patterns at `dst` (round to nearest even). */
void cf16_narrow(const float *src, uint16_t *dst, size_t count);

/* The portable paths of the two functions above. */
void cf16_widen_scalar(const uint16_t *src, float *dst, size_t count);
void cf16_narrow_scalar(const float *src, uint16_t *dst, size_t count);

/* 1 when cf16_widen and cf16_narrow use F16C on this CPU, else 0. */
int cf16_uses_f16c(void);

#ifdef __cplusplus
}
#endif

#endif
