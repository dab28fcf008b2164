/* margin_velem.h -- the vector forms (fl_velem_fn, common.h) of the float exponential, logistic, hinge and
 * zero-one losses (margin_tpl.h has the formulas): the kernels of margin.c, and evaluate.c's evaluate_binary,
 * whose terms are these losses' own. n vectors in lockstep. Included after common.h. */
#ifndef FL_MARGIN_VELEM_H
#define FL_MARGIN_VELEM_H
#ifdef FL_VF_N
FL_INLINE void fl_exponential_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                    float param, int flag, const int n)
{
    (void)param, (void)flag;
    FL__EACH(j, n) loss[j] = -(y[j] * x[j]);
    fl__vexp_mid_f32_n(loss, n);
    FL__EACH(j, n) dloss[j] = -y[j] * loss[j];
    FL__EACH(j, n) d2loss[j] = loss[j]; /* y^2 = 1 */
}

/* d2/dx2 = sigmoid(m) sigmoid(-m) = e / (1 + e)^2 (y^2 = 1), e = exp(-|m|): no cancellation for any m */
FL_INLINE void fl_logistic_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                 float param, int flag, const int n)
{
    (void)param, (void)flag;
    fl_vf m[FL__XU], e[FL__XU], inv[FL__XU];
    FL__EACH(j, n) m[j] = y[j] * x[j];
    FL__EACH(j, n) e[j] = (fl_vf)((fl_vfi)m[j] | INT32_MIN); /* -|m|: the sign bit set */
    fl__vexp_f32_n(e, n);
    fl__vlog1p_unit_f32_n(e, loss, inv, n);
    FL__EACH(j, n) {
        const fl_vfi neg = m[j] < 0.0f;
        dloss[j] = -y[j] * fl__vf_blend(neg, inv[j], e[j] * inv[j]);
        d2loss[j] = e[j] * inv[j] * inv[j];
        loss[j] = fl__vf_blend(neg, loss[j] - m[j], loss[j]);
    }
}

/* hinge: h = max(0, z), z = margin - y x (squared: h^2); d/dx = -y (squared: -2 y z) where z > 0, else 0. */
FL_INLINE void fl_hinge_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                              float param, int flag, const int n)
{
    FL__EACH(j, n) {
        d2loss[j] = (fl_vf){0}; /* hinge has no NAME_grad_hess: never stored */
        const fl_vf z = param - y[j] * x[j];
        const fl_vfi off = z <= 0.0f; /* a nan z is not: its loss is nan, its gradient passes (as relu's) */
        const fl_vf h = fl__vf_blend(off, (fl_vf){0}, z);
        loss[j] = flag ? h * h : h;
        dloss[j] = (fl_vf)(~off & (fl_vfi)(-y[j] * (flag ? 2.0f * z : (fl_vf){0} + 1.0f)));
    }
}

/* zero-one: 1 where the sign of x (> 0) differs from the label's, else 0; no gradient */
FL_INLINE void fl_zero_one_velem(const fl_vf *x, const fl_vf *y, fl_vf *loss, fl_vf *dloss, fl_vf *d2loss,
                                 float param, int flag, const int n)
{
    (void)param, (void)flag;
    FL__EACH(j, n) {
        loss[j] = (fl_vf)(((x[j] > 0.0f) ^ (y[j] > 0.0f)) & (fl_vfi)((fl_vf){0} + 1.0f));
        dloss[j] = d2loss[j] = (fl_vf){0};
    }
}

#endif
#endif
