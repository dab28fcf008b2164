/* margin.c -- the margin losses: binary (zero-one, logistic, exponential, hinge; pair kernels over (score, label)
 * with labels in {-1, +1}) and multiclass (multiclass hinge, top-1 zero-one; row kernels over rows of class
 * scores with integer targets). Compiled once per SIMD level; the kernels are written once in margin_tpl.h.
 *
 * The per-element math is in margin_tpl.h, in the element type (float data is computed with the float functions
 * of vmath.h, 16 lanes per AVX-512 vector; sums are in double). */
#include "common.h"

#include "margin_velem.h"

#ifdef FL_VF_N
/* sigmoid_focal (margin_tpl.h has the formulas): alpha = param, gamma = param2, flag FL_FOCAL_* (the same for
 * every element: q^gamma by a branch per step). From e = exp(-|x|): log1p(e) and 1 / (1 + e) as logistic. */
FL_INLINE void fl_sigmoid_focal_velem(const fl_vf *x, const fl_vf *y, const fl_vf *v, fl_vf *loss, fl_vf *dloss,
                                      fl_vf *d2loss, float alpha, float gamma, int flag, const int n)
{
    flag &= ~FL_VELEM3_SUM_ONLY; /* its losses are the same either way */
    (void)v;
    fl_vf e[FL__XU], inv[FL__XU], l1p[FL__XU], q[FL__XU], qg[FL__XU];
    FL__EACH(j, n) e[j] = (fl_vf)((fl_vfi)x[j] | INT32_MIN); /* -|x|: the sign bit set */
    fl__vexp_f32_n(e, n);
    fl__vlog1p_unit_f32_n(e, l1p, inv, n);
    FL__EACH(j, n) {
        const fl_vfi neg = x[j] < 0.0f;
        const fl_vf ei = e[j] * inv[j], s = fl__vf_blend(neg, ei, inv[j]), sc = fl__vf_blend(neg, inv[j], ei);
        q[j] = s * (1.0f - y[j]) + sc * y[j];
    }
    if (flag == FL_FOCAL_GAMMA_2) FL__EACH(j, n) qg[j] = q[j] * q[j];
    else if (flag == FL_FOCAL_GAMMA_1) FL__EACH(j, n) qg[j] = q[j];
    else if (flag == FL_FOCAL_GAMMA_0) FL__EACH(j, n) qg[j] = (fl_vf){0} + 1.0f;
    else {
        fl__vlog_f32_n(q, qg, n);
        FL__EACH(j, n) qg[j] = gamma * qg[j];
        fl__vexp_f32_n(qg, n);
    }
    FL__EACH(j, n) {
        const fl_vfi neg = x[j] < 0.0f;
        const fl_vf ei = e[j] * inv[j], s = fl__vf_blend(neg, ei, inv[j]), sc = fl__vf_blend(neg, inv[j], ei);
        const fl_vf sd = ei * inv[j], y1 = 1.0f - y[j];
        const fl_vf ce = fl__vf_blend(neg, -y[j] * x[j], y1 * x[j]) + l1p[j];
        const fl_vf c = 1.0f - 2.0f * y[j], sy = s * y1 - sc * y[j];
        const fl_vf r = fl__vf_blend(q[j] > 0.0f, sd / q[j], fl__vf_blend(s > sc, s, sc));
        const fl_vf at = alpha < 0 ? (fl_vf){0} + 1.0f : alpha * y[j] + (1.0f - alpha) * y1;
        const fl_vf w = at * qg[j], gcr = gamma * c * r;
        loss[j] = w * ce;
        dloss[j] = w * (sy + gcr * ce);
        d2loss[j] = w * (sd + gcr * (2.0f * sy + ce * ((sc - s) + (gamma - 1.0f) * c * r)));
    }
}
#endif

#ifdef FL_VF_N
#if !defined(__AVX__) && defined(__SSE2__)
#include <emmintrin.h>
#endif
/* the bytes of m (lanes all ones or all zeros: a lane of b bytes gives b equal bits), as bits */
FL_INLINE uint64_t fl__byte_bits(fl_vfi m)
{
#if defined(__AVX512BW__) && FL_VBYTES == 64
    return (uint64_t)_mm512_movepi8_mask((__m512i)m);
#elif defined(__AVX2__) && FL_VBYTES == 32
    return (uint32_t)_mm256_movemask_epi8((__m256i)m);
#elif defined(__SSE2__) && FL_VBYTES == 16
    return (uint32_t)_mm_movemask_epi8((__m128i)m);
#else
    unsigned char b[FL_VBYTES];
    memcpy(b, &m, sizeof b);
    uint64_t bits = 0;
    for (int k = 0; k < FL_VBYTES; k++) bits |= (uint64_t)(b[k] >> 7) << k;
    return bits;
#endif
}
#endif

#define FL_TEMPLATE "margin_tpl.h"
#include "each_dtype.h"
