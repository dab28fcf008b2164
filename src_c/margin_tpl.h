/* margin_tpl.h -- the margin kernels for one input dtype. Included by margin.c through each_dtype.h (S, T,
 * FL_LD, FL_ST, FL_T, FL_TC: see there). */
#if !defined(T) || !defined(S) || !defined(FL_LD) || !defined(FL_T) || !defined(FL_TC)
#error "include margin_tpl.h through each_dtype.h"
#endif

/* ---- the per-element math of the binary losses, in the element type T ---------------------------------------
 * The pair driver (FL_PAIR_KERNEL, common.h) hands each function the score x and the label y and it sets the
 * loss and d loss / d x, before sample weighting; m = y x is the margin. Computing float data in float (not
 * widened to double) doubles the vector lanes; each result is within 2 float ulps, and the sums are in double. */

/* zero-one: the predicted label is +1 where x > 0, else -1 (a nan score predicts -1); no gradient. */
FL_INLINE void FL_T(fl_zero_one_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss)
{
    (void)a;
    *loss = (T)((x > 0) != (y > 0)); /* for y in {-1, +1}; branch-free (random signs mispredict) */
    *dloss = 0;
}

/* logistic: log(1 + exp(-m)) = max(-m, 0) + log1p(exp(-|m|)). exp never overflows (its argument is <= 0), and
 * for m >> 0 the result is exp(-m) to full relative accuracy (no 1 + tiny rounded away); m = -inf gives +inf.
 * d/dx = -y sigmoid(-m), with sigmoid(-m) = 1 / (1 + e) for m < 0 and e / (1 + e) otherwise, e = exp(-|m|).
 * d2/dx2 = sigmoid(m) sigmoid(-m) = e / (1 + e)^2 (y^2 = 1): no cancellation, no overflow. */
FL_INLINE void FL_T(fl_logistic_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    (void)a;
    const T m = y * x, e = FL_TC(fl_exp)(m < 0 ? m : -m);
    *loss = (m < 0 ? -m : 0) + FL_TC(fl_log1p)(e);
    *dloss = -y * (m < 0 ? 1 : e) / (1 + e);
    *d2loss = e / ((1 + e) * (1 + e));
}

/* exponential: exp(-m); d/dx = -y exp(-m); d2/dx2 = exp(-m) (y^2 = 1). */
FL_INLINE void FL_T(fl_exponential_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    (void)a;
    const T e = FL_TC(fl_exp)(-y * x);
    *loss = e;
    *dloss = -y * e;
    *d2loss = e;
}

/* sigmoid_focal (torchvision's; target y in [0, 1], alpha = a->param, gamma = a->param2 >= 0, flag FL_FOCAL_*):
 *   loss = a_t ce q^gamma,  ce = bce_with_logits(x, y),  q = 1 - p_t = s (1 - y) + (1 - s) y,  s = sigmoid(x),
 *   a_t = alpha y + (1 - alpha)(1 - y) (1 where alpha < 0). With s' = s (1 - s), c = 1 - 2 y and r = s' / q
 *   (in [0, 1]: q >= min(s, 1 - s) >= s'; where q underflows to 0, its limit max(s, 1 - s)):
 *   d/dx   = a_t q^gamma ((s - y) + gamma c r ce)
 *   d2/dx2 = a_t q^gamma (s' + gamma c r (2 (s - y) + ce ((1 - 2 s) + (gamma - 1) c r)))
 * Every factor is bounded but ce (~|x|), and ce q^gamma stays finite: stable for any finite logit. s, 1 - s and
 * ce come from e = exp(-|x|) as in logistic; q^gamma is exp(gamma log q), but q, q^2 and 1 for gamma 1, 2, 0
 * (exact, and 0^0 = 1 as torch's pow). */
FL_INLINE void FL_T(fl_sigmoid_focal_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss, T *d2loss)
{
    const T alpha = (T)a->param, gamma = (T)a->param2;
    const T e = FL_TC(fl_exp)(x < 0 ? x : -x), inv = 1 / (1 + e);
    const T s = x < 0 ? e * inv : inv, sc = x < 0 ? inv : e * inv, sd = e * inv * inv;
    const T ce = (x < 0 ? -y * x : (1 - y) * x) + FL_TC(fl_log1p)(e);
    /* s - y = s (1 - y) - (1 - s) y and 1 - 2s = (1 - s) - s: no 1 - s rounded (x = 25, y = 1: 1e-5 of it) */
    const T q = s * (1 - y) + sc * y, c = 1 - 2 * y, sy = s * (1 - y) - sc * y;
    const T r = q > 0 ? sd / q : (s > sc ? s : sc);
    const T qg = a->flag == FL_FOCAL_GAMMA_2 ? q * q : a->flag == FL_FOCAL_GAMMA_1 ? q
                 : a->flag == FL_FOCAL_GAMMA_0 ? 1 : FL_TC(fl_exp)(gamma * FL_TC(fl_log)(q));
    const T at = alpha < 0 ? 1 : alpha * y + (1 - alpha) * (1 - y), w = at * qg;
    *loss = w * ce;
    *dloss = w * (sy + gamma * c * r * ce);
    *d2loss = w * (sd + gamma * c * r * (2 * sy + ce * ((sc - s) + (gamma - 1) * c * r)));
}

/* hinge: h = max(0, z), z = margin - m (a->param, already rounded to T); squared (a->flag): h^2. d/dx = -y
 * (squared: -2 y z) where z > 0 and 0 where z <= 0, the kink included: torch's subgradient of relu(z)
 * (threshold_backward). A nan z gives a nan loss, and passes the gradient through as relu does. */
FL_INLINE void FL_T(fl_hinge_elem)(T x, T y, const fl_pair_args *a, T *loss, T *dloss)
{
    const T z = (T)a->param - y * x;
    const T h = z <= 0 ? 0 : z;
    *loss = a->flag ? h * h : h;
    *dloss = z <= 0 ? 0 : -y * (a->flag ? 2 * z : 1);
}

/* ---- binary: labels in {-1, +1}, checked by the pair driver ------------------------------------------- */
FL_PAIR_KERNEL_V(FL_T(fl_zero_one), T, 1, FL_T(fl_zero_one_elem)(xv, yv, a, &loss_t, &dloss_t), fl_zero_one_velem)
FL_PAIR_KERNEL_V(FL_T(fl_logistic), T, 1, FL_T(fl_logistic_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t),
                 fl_logistic_velem)
FL_PAIR_KERNEL_V(FL_T(fl_exponential), T, 1, FL_T(fl_exponential_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t),
                 fl_exponential_velem)
FL_PAIR_KERNEL_V(FL_T(fl_hinge), T, 1, FL_T(fl_hinge_elem)(xv, yv, a, &loss_t, &dloss_t), fl_hinge_velem)

/* ---- binary with targets in [0, 1] (not checked, as torchvision) ------------------------------------------- */
FL_PAIR_KERNEL_V3(FL_T(fl_sigmoid_focal), T, 0,
                  FL_T(fl_sigmoid_focal_elem)(xv, yv, a, &loss_t, &dloss_t, &d2loss_t), fl_sigmoid_focal_velem, 0)

/* ---- multiclass: rows of n_cols class scores, integer targets -------------------------------------------
 * A row function returns row i's loss before its sample weight (class weight included) and, when grad_row is
 * not NULL, writes the whole gradient row of that loss times g. */
typedef double (*FL_T(multiclass_row_fn))(const fl_multiclass_args *a, const S *FL_RESTRICT x, fl_index t, double g,
                                         T *FL_RESTRICT grad_row);

#ifdef FL_VF_N
/* ---- the rows in vectors ----------------------------------------------------------------------------------
 * A row is read a vector of MC_N elements at a time (the float kinds as float, double as double) from its
 * start; the last, partial vector is read past the row's end where that stays inside the array (the lanes past
 * n are then set to the padding), else from a padded copy. A row of 10 classes is then one or two vectors and
 * a compare (the hinge losses; top-1 of up to 16 classes a row at a time by masks, top1_error_masks, and up to
 * FL_SMALL_C a transposed tile of rows, top1_error_tile). */
#define VT FL_T(mc_vt)
#define VIT FL_T(mc_vit)
typedef T VT __attribute__((vector_size(FL_VBYTES)));
/* the lanes' integer: the width of T (a comparison's result) */
typedef __typeof__(__builtin_choose_expr(sizeof(T) == 8, (int64_t)0, (int32_t)0)) FL_T(mc_int);
typedef FL_T(mc_int) VIT __attribute__((vector_size(FL_VBYTES)));
#define MC_N ((fl_index)(sizeof(VT) / sizeof(T)))

FL_INLINE VT FL_T(mc_blend)(VIT m, VT a, VT b) { return (VT)((m & (VIT)a) | (~m & (VIT)b)); }
/* v in double vectors: out[0] (and out[1], the high lanes, for float) */
FL_INLINE void FL_T(mc_widen)(VT v, fl_vd out[2])
{
    if (sizeof(T) == sizeof(double)) {
        memcpy(&out[0], &v, sizeof out[0]);
    } else {
        fl_vf f;
        memcpy(&f, &v, sizeof f);
        fl__vf_widen(f, &out[0], &out[1]);
    }
}

/* {0, 1, ..., MC_N - 1} + k, where k is clamped to [-1, MC_N] (a lane index compared with it: no overflow) */
FL_INLINE VIT FL_T(mc_lanes_minus)(fl_index k)
{
    VIT iv;
    for (int l = 0; l < (int)MC_N; l++) iv[l] = l;
    return iv - (FL_T(mc_int))(k < -1 ? -1 : k > MC_N ? MC_N : k);
}

FL_INLINE VT FL_T(mc_load)(const S *FL_RESTRICT x, fl_index j)
{
    VT v;
    if (FL_ST == FL_ST_F16 || FL_ST == FL_ST_BF16) {
        const fl_vf f = fl__vf_load_st(x, j, FL_ST);
        memcpy(&v, &f, sizeof v);
    } else {
        memcpy(&v, x + j, sizeof v);
    }
    return v;
}

/* elements j .. n - 1 of the row (fewer than MC_N), the other lanes `pad`; end: the array's end */
FL_INLINE VT FL_T(mc_load_part)(const S *FL_RESTRICT x, fl_index j, fl_index n, const S *end, T pad)
{
    if (x + j + MC_N <= end)
        return FL_T(mc_blend)(FL_T(mc_lanes_minus)(n - j) < 0, FL_T(mc_load)(x, j), (VT){0} + pad);
    T b[MC_N];
    for (fl_index l = 0; l < MC_N; l++) b[l] = j + l < n ? FL_LD(x[j + l]) : pad;
    VT v;
    memcpy(&v, b, sizeof v);
    return v;
}

/* the vector at j of a row of n elements (padded with pad past n) */
FL_INLINE VT FL_T(mc_chunk)(const S *FL_RESTRICT x, fl_index j, fl_index n, const S *end, T pad)
{
    return j + MC_N <= n ? FL_T(mc_load)(x, j) : FL_T(mc_load_part)(x, j, n, end, pad);
}

/* where a row may be read past its end: the end of the scores */
static inline const S *FL_T(mc_end)(const fl_multiclass_args *a)
{
    return (const S *)a->scores + (a->n_rows - 1) * a->row_stride + a->n_cols;
}

/* fl_lane_sum of the FL_LANES lanes of FL_LANES / FL_VD_N vectors (lane k of vector v: lane v * FL_VD_N + k), in
 * registers: the same adds in the same order. fl_lane_sum's loop on the lanes stored to memory was not unrolled,
 * each add waiting for the last one's store: with the division, the most of a row of 10 classes. */
FL_INLINE double FL_T(mc_lane_sum)(fl_vd *acc)
{
    _Pragma("GCC unroll 8") for (int w = FL_LANES / FL_VD_N / 2; w >= 1; w /= 2)
        _Pragma("GCC unroll 8") for (int v = 0; v < w; v++) acc[v] += acc[v + w];
    double l[FL_VD_N];
    memcpy(l, acc, sizeof l);
    _Pragma("GCC unroll 8") for (int w = FL_VD_N / 2; w >= 1; w /= 2)
        _Pragma("GCC unroll 8") for (int k = 0; k < w; k++) l[k] += l[k + w];
    return l[0];
}

/* weston_watkins, torch's multi_margin_loss: (w_t / C) sum_{j != t} max(0, z_j)^p, z_j = margin - x_t + x_j.
 * As torch, a term counts only where z_j > 0: the kink z_j = 0 has gradient 0 and a nan z_j adds nothing.
 * d/dx_j = (w_t / C) p z_j^(p-1) for the active j != t, and d/dx_t = minus their sum.
 * One pass over the row in vectors; z_j in double (exact for float data). The sums keep FL_LANES lanes, element
 * j in lane j % FL_LANES (whatever the vector width: the same bits at every SIMD level); the target's lane and
 * the padding are -inf, whose z is -inf (or nan for x_t = -inf): no term.
 * ww_group: the work on the FL_LANES elements from j16; full (a constant) where they are all in the row, so that
 * the vectors are loaded without the tail's tests; the target's lane tested for only where the group holds it. */
FL_INLINE void FL_T(ww_group)(const S *FL_RESTRICT x, fl_index j16, fl_index n, const S *end, fl_index t, fl_vd c0,
                              fl_vd dv, fl_vd *acc, fl_vd *dacc, T *FL_RESTRICT grad_row, const int p,
                              const int grad, const int full)
{
    enum { PER = FL_LANES / (int)(sizeof(VT) / sizeof(T)) };
    const int has_t = (uint64_t)(t - j16) < (uint64_t)FL_LANES;
    if (full) /* the group's lines FL_PREFETCH_BYTES ahead (see fl_prefetch_vec: the work a line outruns its loads) */
        for (size_t b = 0; b < FL_LANES * sizeof(S); b += 64)
            fl_prefetch_ahead((const char *)(x + j16) + b);
    FL__EACH(u, PER) { /* unrolled: each slot a constant, the sums stay in registers */
        const fl_index j = j16 + u * MC_N;
        if (!full && j >= n) break;
        VT v = full ? FL_T(mc_load)(x, j) : FL_T(mc_chunk)(x, j, n, end, -INFINITY);
        if (has_t && (uint64_t)(t - j) < (uint64_t)MC_N) /* the target's vector: its lane out */
            v = FL_T(mc_blend)(FL_T(mc_lanes_minus)(t - j) == 0, (VT){0} - INFINITY, v);
        fl_vd zs[2] = {c0, c0}; /* z = c0 + x_j (in double) */
        if (sizeof(T) == sizeof(double)) {
            memcpy(&zs[1], &v, sizeof v);
            zs[0] += zs[1];
        } else {
            fl_vf f;
            memcpy(&f, &v, sizeof f);
            fl__vf_add_widened(&zs[0], &zs[1], f);
        }
        T d_out[MC_N];
        for (int h = 0; h < (int)(sizeof(T) == sizeof(double) ? 1 : 2); h++) {
            const fl_vd z = zs[h];
            const fl_vdi on = z > 0.0;
            const fl_vd hz = (fl_vd)(on & (fl_vdi)z);
            const int slot = u * (int)MC_N / FL_VD_N + h;
            acc[slot] += p == 1 ? hz : hz * hz;
            if (grad) {
                const fl_vd d = p == 1 ? (fl_vd)(on & (fl_vdi)dv) : dv * hz;
                dacc[slot] += d;
                if (sizeof(T) == sizeof(double)) {
                    memcpy(d_out, &d, sizeof d);
                } else {
                    const fl_vfh df = __builtin_convertvector(d, fl_vfh);
                    memcpy(d_out + h * FL_VD_N, &df, sizeof df);
                }
            }
        }
        if (grad) {
            if (full || j + MC_N <= n) memcpy(grad_row + j, d_out, sizeof d_out);
            else memcpy(grad_row + j, d_out, (size_t)(n - j) * sizeof(T));
        }
    }
}

FL_INLINE double FL_T(ww_row_p)(const fl_multiclass_args *a, const S *FL_RESTRICT x, fl_index t, double g,
                                T *FL_RESTRICT grad_row, const int p, const int grad)
{
    enum { NV = FL_LANES / FL_VD_N };
    const fl_index n = a->n_cols;
    const S *end = FL_T(mc_end)(a);
    const double wt = a->weight ? a->weight[t] : 1.0, c = g * wt / (double)n;
    const fl_vd c0 = (fl_vd){0} + (a->margin - (double)FL_LD(x[t])), dv = (fl_vd){0} + (p == 1 ? c : 2.0 * c);
    fl_vd acc[NV], dacc[NV];
    for (int v = 0; v < NV; v++) acc[v] = dacc[v] = (fl_vd){0};
    fl_index j16 = 0;
    /* whole groups, then the last: the tail's and the target's tests are out of the vectors of whole groups
     * (interleaved A/B, 1 thread: float64 4,096 x 1,000 in cache 14% faster, float32 from memory 2-3%) */
    for (; j16 + FL_LANES <= n; j16 += FL_LANES)
        FL_T(ww_group)(x, j16, n, end, t, c0, dv, acc, dacc, grad_row, p, grad, 1);
    if (j16 < n) FL_T(ww_group)(x, j16, n, end, t, c0, dv, acc, dacc, grad_row, p, grad, 0);
    const double sum = FL_T(mc_lane_sum)(acc);
    if (grad) grad_row[t] = (T)-FL_T(mc_lane_sum)(dacc);
    return wt * sum / (double)n;
}

static double FL_T(weston_watkins_row)(const fl_multiclass_args *a, const S *FL_RESTRICT x, fl_index t, double g,
                                       T *FL_RESTRICT grad_row)
{
    /* p and whether a gradient is written as constants: the loss alone keeps its sums in registers (with the
     * gradient's too, AVX2 ran out of them and the sums went through the stack) */
    if (grad_row) return a->p == 1 ? FL_T(ww_row_p)(a, x, t, g, grad_row, 1, 1) : FL_T(ww_row_p)(a, x, t, g, grad_row, 2, 1);
    return a->p == 1 ? FL_T(ww_row_p)(a, x, t, g, NULL, 1, 0) : FL_T(ww_row_p)(a, x, t, g, NULL, 2, 0);
}
#else /* no vector extensions: weston_watkins (above) element by element */
static double FL_T(weston_watkins_row)(const fl_multiclass_args *a, const S *FL_RESTRICT x, fl_index t, double g,
                                       T *FL_RESTRICT grad_row)
{
    const fl_index n = a->n_cols;
    const double wt = a->weight ? a->weight[t] : 1.0, xt = (double)FL_LD(x[t]), c = g * wt / (double)n;
    double sum = 0.0, dt = 0.0;
    for (fl_index j = 0; j < n; j++) {
        const double z = a->margin - xt + (double)FL_LD(x[j]);
        double d = 0.0;
        if (j != t && z > 0.0) {
            sum += a->p == 1 ? z : z * z;
            d = c * (a->p == 1 ? 1.0 : 2.0 * z);
        }
        dt -= d;
        if (grad_row) grad_row[j] = (T)d;
    }
    if (grad_row) grad_row[t] = (T)dt;
    return wt * sum / (double)n;
}
#endif

/* crammer_singer, scikit-learn's multiclass hinge_loss: w_t max(0, z), z = margin - x_t + max_{j != t} x_j.
 * Where z > 0 the gradient is -w_t at the target and +w_t at the first largest rival (the kink z = 0: 0).
 * A nan score makes the rival (or x_t) nan and the loss nan, as NumPy's clip; one class has no rival: loss 0.
 * The rival is a max over the row in vectors (the target's lane -inf); its first position is looked for only
 * where a gradient is written and z > 0 (then the rival is no nan). */
static double FL_T(crammer_singer_row)(const fl_multiclass_args *a, const S *FL_RESTRICT x, fl_index t, double g,
                                       T *FL_RESTRICT grad_row)
{
    const fl_index n = a->n_cols;
    T rival = -INFINITY;
    int any_nan = 0;
#ifdef FL_VF_N
    const S *end = FL_T(mc_end)(a);
    VT m = (VT){0} - INFINITY;
    VIT nan = (VIT){0};
    for (fl_index j = 0; j < n; j += MC_N) {
        if ((j * (fl_index)sizeof(S)) % 64 == 0) fl_prefetch_ahead(x + j);
        const VT v = FL_T(mc_blend)(FL_T(mc_lanes_minus)(t - j) == 0, (VT){0} - INFINITY,
                                    FL_T(mc_chunk)(x, j, n, end, -INFINITY));
        nan |= v != v;
        m = FL_T(mc_blend)(v > m, v, m);
    }
    for (int l = 0; l < (int)MC_N; l++) {
        rival = m[l] > rival ? m[l] : rival;
        any_nan |= nan[l] != 0;
    }
#else
    for (fl_index j = 0; j < n; j++) {
        const T v = FL_LD(x[j]);
        rival = j != t && v > rival ? v : rival;
        any_nan |= j != t && v != v;
    }
#endif
    if (any_nan) rival = (T)NAN;
    const double wt = a->weight ? a->weight[t] : 1.0, z = a->margin - (double)FL_LD(x[t]) + (double)rival;
    if (grad_row) {
        if (!a->grad_zeroed) memset(grad_row, 0, (size_t)n * sizeof(T)); /* else zeros already (the OS's) */
        if (z > 0.0) {
#ifdef FL_VF_N
            /* the rival's first position in vectors (the row is still in cache): it was a scalar scan of half the
             * row on average, half the row function's time at 65,536 x 1,000 in perf (the pad: nan, equal to nothing) */
            fl_index k = n;
            for (fl_index j = 0; j < n; j += MC_N) {
                const VIT hit = (FL_T(mc_chunk)(x, j, n, end, (T)NAN) == (VT){0} + rival) &
                                (FL_T(mc_lanes_minus)(t - j) != 0);
                if (fl__any_lane((fl_vfi)hit)) {
                    int l = 0;
                    while (!hit[l]) l++;
                    k = j + l;
                    break;
                }
            }
#else
            fl_index k = 0;
            while (k < n && !(FL_LD(x[k]) == rival && k != t)) k++;
#endif
            if (k < n) {
                grad_row[t] = (T)(-g * wt);
                grad_row[k] = (T)(g * wt);
            }
        }
    }
    return z <= 0.0 ? 0.0 : wt * z;
}

/* top-1 error: 1 where the first maximum (NumPy's argmax: the first nan if there is one) is not the target.
 * Without an argmax: t is the first maximum iff no class before t has !(x_j < x_t) and none after it has
 * !(x_j <= x_t) (a nan x_j is both, and wins); for a nan x_t, iff no nan comes before it. A row stops at the
 * first vector that holds such a class: most rows of a poor model after a vector or two. */
static double FL_T(top1_error_row)(const fl_multiclass_args *a, const S *FL_RESTRICT x, fl_index t, double g,
                                   T *FL_RESTRICT grad_row)
{
    (void)g;
    (void)grad_row;
    const fl_index n = a->n_cols;
    const T xt = FL_LD(x[t]);
    if (xt != xt) { /* rare: the first nan wins */
        for (fl_index j = 0; j < t; j++)
            if (FL_LD(x[j]) != FL_LD(x[j])) return 1.0;
        return 0.0;
    }
#ifdef FL_VF_N
    const S *end = FL_T(mc_end)(a);
    const VT xv = (VT){0} + xt;
    fl_index j = 0;
    for (; j + MC_N <= t; j += MC_N) /* wholly before t */
        if (fl__any_lane((fl_vfi)~(FL_T(mc_load)(x, j) < xv))) return 1.0;
    for (int first = 1; j < n; j += MC_N, first = 0) {
        if (!first && j + MC_N <= n) { /* wholly after t */
            if (fl__any_lane((fl_vfi)~(FL_T(mc_load)(x, j) <= xv))) return 1.0;
            continue;
        }
        /* the vector that holds t, and the partial one at the end: lanes before t, after t, past n */
        const VT v = FL_T(mc_chunk)(x, j, n, end, -INFINITY);
        const VIT rel = FL_T(mc_lanes_minus)(t - j), past = FL_T(mc_lanes_minus)(n - j) >= 0;
        const VIT beats = ((rel < 0) & ~(v < xv)) | ((rel > 0) & ~past & ~(v <= xv));
        if (fl__any_lane((fl_vfi)beats)) return 1.0;
    }
#else
    for (fl_index j = 0; j < n; j++)
        if (j < t ? !(FL_LD(x[j]) < xt) : j > t && !(FL_LD(x[j]) <= xt)) return 1.0;
#endif
    return 0.0;
}
#ifdef FL_VF_N
/* Few classes (n <= FL_SMALL_C), a tile of tr <= MC_N rows from the first row at x, a row a vector lane: the
 * tile transposed into buf (vmath.h's fl_tile_load_*: a class a vector; a short tile's lanes past tr repeat its
 * first row) and the rows' targets as a vector (converted in registers: lanes stored one by one and loaded as a
 * vector wait for the stores). */
static VIT FL_T(mc_tile)(const fl_multiclass_args *a, const S *FL_RESTRICT x, const int64_t *target, fl_index tr,
                         T *FL_RESTRICT buf)
{
    const fl_index n = a->n_cols, stride = a->row_stride;
    if (!FL_T(fl_tile_load)(buf, x, stride, n, tr))
        for (fl_index r = 0; r < MC_N; r++)
            for (fl_index c = 0; c < n; c++) buf[c * MC_N + r] = FL_LD(x[(r < tr ? r : 0) * stride + c]);
    VIT tv;
    if (tr == MC_N) {
        typedef int64_t VT64 __attribute__((vector_size(MC_N * sizeof(int64_t))));
        VT64 t64;
        memcpy(&t64, target, sizeof t64);
        tv = __builtin_convertvector(t64, VIT);
    } else {
        for (fl_index r = 0; r < MC_N; r++) tv[r] = (FL_T(mc_int))target[r < tr ? r : 0];
    }
    return tv;
}

/* a tile's lanes in double: h[0] (and h[1], the high lanes, for float) */
typedef struct { fl_vd h[2]; } FL_T(mc_pair);

/* lane k of ww_row_p's sums for every row of a tile: the term of class k, plus that of class k + 16 where the
 * row has it (0 + t_k is t_k: the row kernel's first add), terms as ww_row_p forms them, 0 past n */
FL_INLINE FL_T(mc_pair) FL_T(ww_lane)(const fl_multiclass_args *a, const T *buf, VIT tv, const fl_vd c0[2],
                                      fl_index k)
{
    enum { NH = sizeof(T) == sizeof(double) ? 1 : 2 };
    FL_T(mc_pair) out = {{(fl_vd){0}, (fl_vd){0}}};
    for (fl_index c = k; c < a->n_cols && c < k + 2 * FL_LANES; c += FL_LANES) {
        VT v;
        memcpy(&v, buf + c * MC_N, sizeof v);
        v = FL_T(mc_blend)(tv == (FL_T(mc_int))c, (VT){0} - INFINITY, v); /* the target's own term out */
        fl_vd vs[2];
        FL_T(mc_widen)(v, vs);
        for (int h = 0; h < NH; h++) {
            const fl_vd z = c0[h] + vs[h], hz = (fl_vd)((z > 0.0) & (fl_vdi)z);
            out.h[h] += a->p == 1 ? hz : hz * hz;
        }
    }
    return out;
}

/* Weston-Watkins losses (no gradient) of a tile of rows (mc_tile): loss[r] = w_t sum_{j != t} max(0, z_j)^p / n,
 * z_j = (margin - x_t) + x_j in double, each term as ww_row_p forms it (a nan z counts 0), class by class (a
 * row of 10 classes was a vector and a partial one, with the loop's overhead, each). */
static void FL_T(ww_loss_tile)(const fl_multiclass_args *a, const S *FL_RESTRICT x, const int64_t *target,
                               fl_index tr, double *loss)
{
    enum { NH = sizeof(T) == sizeof(double) ? 1 : 2 }; /* double vectors a tile's lanes */
    const fl_index n = a->n_cols;
    T buf[FL_SMALL_C * MC_N];
    const VIT tv = FL_T(mc_tile)(a, x, target, tr, buf);
    VT xt = (VT){0};
    for (fl_index c = 0; c < n; c++) {
        VT v;
        memcpy(&v, buf + c * MC_N, sizeof v);
        xt = FL_T(mc_blend)(tv == (FL_T(mc_int))c, v, xt);
    }
    fl_vd c0[2];
    FL_T(mc_widen)(xt, c0);
    for (int h = 0; h < NH; h++) c0[h] = a->margin - c0[h];
    _Static_assert(FL_LANES == 16, "the lanes below and fl_lane_sum's tree are written out for 16 lanes");
    /* ww_row_p's sums: class j's term in lane j % FL_LANES (two classes a lane past 16), the lanes added in
     * fl_lane_sum's order (mc_lane_sum), written out: the same bits as the row kernel (and as NAME_and_grad's
     * loss), the partial sums in registers */
    const FL_T(mc_pair) lv[FL_LANES] = {
        FL_T(ww_lane)(a, buf, tv, c0, 0), FL_T(ww_lane)(a, buf, tv, c0, 1), FL_T(ww_lane)(a, buf, tv, c0, 2),
        FL_T(ww_lane)(a, buf, tv, c0, 3), FL_T(ww_lane)(a, buf, tv, c0, 4), FL_T(ww_lane)(a, buf, tv, c0, 5),
        FL_T(ww_lane)(a, buf, tv, c0, 6), FL_T(ww_lane)(a, buf, tv, c0, 7), FL_T(ww_lane)(a, buf, tv, c0, 8),
        FL_T(ww_lane)(a, buf, tv, c0, 9), FL_T(ww_lane)(a, buf, tv, c0, 10), FL_T(ww_lane)(a, buf, tv, c0, 11),
        FL_T(ww_lane)(a, buf, tv, c0, 12), FL_T(ww_lane)(a, buf, tv, c0, 13), FL_T(ww_lane)(a, buf, tv, c0, 14),
        FL_T(ww_lane)(a, buf, tv, c0, 15)};
    FL_T(mc_pair) total;
    for (int h = 0; h < NH; h++) {
#define FL__P(j) (lv[j].h[h] + lv[(j) + 8].h[h])
        total.h[h] = ((FL__P(0) + FL__P(4)) + (FL__P(2) + FL__P(6))) + ((FL__P(1) + FL__P(5)) + (FL__P(3) + FL__P(7)));
#undef FL__P
    }
    double sum[MC_N];
    memcpy(sum, &total, sizeof sum);
    for (fl_index r = 0; r < tr; r++) {
        const double wt = a->weight ? a->weight[target[r]] : 1.0;
        loss[r] = wt * sum[r] / (double)n;
    }
}

/* The top-1 errors of a tile of rows (mc_tile): the argmax of every row at once, class by class: a row of 10
 * classes in one or two vectors was a branchy loop of compares each (1,000,000 x 10 float32: 2.4x the time of
 * JAX's argmax). err[r] = 1 or 0 (as top1_error_row) where err is not NULL; returns the number of 1s. */
static int FL_T(top1_error_tile)(const fl_multiclass_args *a, const S *FL_RESTRICT x, const int64_t *target,
                                 fl_index tr, double *err)
{
    const fl_index n = a->n_cols;
    T buf[FL_SMALL_C * MC_N];
    const VIT tv = FL_T(mc_tile)(a, x, target, tr, buf);
    /* the first maximum's class in each lane, as NumPy's argmax: a class replaces it only where it is greater,
     * or a nan where there is none yet (the first nan wins) */
    VT mx;
    memcpy(&mx, buf, sizeof mx);
    VIT arg = (VIT){0};
    for (fl_index c = 1; c < n; c++) {
        VT v;
        memcpy(&v, buf + c * MC_N, sizeof v);
        const VIT take = (v > mx) | ((v != v) & (mx == mx));
        mx = FL_T(mc_blend)(take, v, mx);
        arg = (take & ((VIT){0} + (FL_T(mc_int))c)) | (~take & arg);
    }
    const VIT wrong = arg != tv;
    /* a bit a byte: the lanes < tr, each sizeof(T) bits */
    const int b = (int)sizeof(T);
    const uint64_t keep = tr * b >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << (tr * b)) - 1;
    const uint64_t bits = fl__byte_bits((fl_vfi)wrong) & keep;
    if (err)
        for (fl_index r = 0; r < tr; r++) err[r] = (double)((bits >> (r * b)) & 1);
    return __builtin_popcountll(bits) / b;
}

/* The top-1 errors of tr rows of n <= FL_T(top1_mask_max) classes, a row at a time without a transpose: the
 * row in one vector (or two that overlap, the second ending at the row's end), compared with its target's score
 * (top1_error_row's test: a class before t errs where !(x_j < x_t), one after it where !(x_j <= x_t); t's own
 * lane never does), the lanes' bits gathered into one word (each lane sizeof(T) bits) and tested. A row of 10
 * float32 classes: 37 instructions, the transposed tile's 33 but without its shuffles (one port) and long
 * chains: 1,000,000 x 10 on 2 threads float32 3.46 -> 2.52 ms, float16 6.4 -> 2.5 ms; 1.2-1.85x at 2 to 16
 * classes, float64 up to 8. Rows whose vectors would read past the array, and a nan target score (the first
 * nan wins), take top1_error_row. err and the count as top1_error_tile. */
static inline fl_index FL_T(top1_mask_max)(void)
{
    return 64 / (fl_index)sizeof(T) < 2 * MC_N ? 64 / (fl_index)sizeof(T) : 2 * MC_N;
}
FL_INLINE int FL_T(top1_error_masks_k)(const fl_multiclass_args *a, const S *FL_RESTRICT x, const int64_t *target,
                                       fl_index tr, double *err, const int two)
{
    const fl_index n = a->n_cols, stride = a->row_stride, second = two ? n - MC_N : 0, span = two ? n : MC_N;
    const int b = (int)sizeof(T);
    const uint64_t keep = n * b >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << (n * b)) - 1;
    const S *end = FL_T(mc_end)(a);
    const VIT idx0 = FL_T(mc_lanes_minus)(0), idx1 = idx0 + (FL_T(mc_int))second;
    /* rows whose vectors stay inside the array; the others, and a nan x_t, by top1_error_row outside the inner
     * loop (a call inside it made gcc keep every invariant vector on the stack) */
    fl_index safe = end - x >= span ? tr : 0; /* a row stride of 0 (broadcast rows) or below: row 0 is the last */
    if (stride > 0 && safe) {
        const fl_index fit = (end - span - x) / stride + 1;
        safe = fit < tr ? fit : tr;
    }
    int count = 0;
    for (fl_index r = 0; r < tr;) {
        for (; r < safe; r++) {
            const S *FL_RESTRICT row = x + r * stride;
            const fl_index t = (fl_index)target[r];
            const T xt = FL_LD(row[t]);
            if (xt != xt) break;
            /* a lane is fine where x_j < x_t, or x_j <= x_t at or after t */
            const VT xv = (VT){0} + xt;
            const VIT tm1 = (VIT){0} + (FL_T(mc_int))(t - 1);
            const VT v0 = FL_T(mc_load)(row, 0);
            uint64_t ok = fl__byte_bits((fl_vfi)((VIT)(v0 < xv) | ((idx0 > tm1) & (VIT)(v0 <= xv))));
            if (two) {
                const VT v1 = FL_T(mc_load)(row, second);
                ok |= fl__byte_bits((fl_vfi)((VIT)(v1 < xv) | ((idx1 > tm1) & (VIT)(v1 <= xv)))) << (second * b);
            }
            const int e = (ok & keep) != keep;
            count += e;
            if (err) err[r] = (double)e;
        }
        if (r < tr) {
            const int e = FL_T(top1_error_row)(a, x + r * stride, (fl_index)target[r], 0.0, NULL) != 0.0;
            count += e;
            if (err) err[r] = (double)e;
            r++;
        }
    }
    return count;
}
/* not inlined: in the driver's OpenMP body gcc kept the loop's invariants on the stack (55 instructions a row) */
static __attribute__((noinline)) int FL_T(top1_error_masks)(const fl_multiclass_args *a, const S *FL_RESTRICT x,
                                                             const int64_t *target, fl_index tr, double *err)
{
    return a->n_cols > MC_N ? FL_T(top1_error_masks_k)(a, x, target, tr, err, 1)
                            : FL_T(top1_error_masks_k)(a, x, target, tr, err, 0);
}
#endif

#ifdef FL_VF_N
#undef VT
#undef VIT
#undef MC_N
#endif

/* The multiclass driver: checks every target first (the first one outside [0, n_cols) is reported and nothing
 * is written), then runs ROW over fixed blocks of rows with per-block partial sums (any n_threads, same bits).
 * The mean divides by sum_i sw_i, times w_t when class_weight_in_mean. */
static int FL_T(multiclass_rows)(fl_multiclass_args *a, int class_weight_in_mean, FL_T(multiclass_row_fn) row)
{
#ifdef FL_VF_N
    /* few classes, top-1 and the weston_watkins loss without a gradient: a tile of rows at a time
     * (top1_error_tile, ww_loss_tile), each row's loss added as row by row */
    enum { TILE = (int)(sizeof(FL_T(mc_vt)) / sizeof(T)) };
    const int top1 = row == FL_T(top1_error_row);
    const int tiles = a->n_cols <= FL_SMALL_C && (top1 || (row == FL_T(weston_watkins_row) && !a->grad));
    const int masks = top1 && a->n_cols <= FL_T(top1_mask_max)(); /* top1_error_masks */
#else
    enum { TILE = 1 };
    const int top1 = 0, tiles = 0, masks = 0;
#endif
    const fl_index n = a->n_cols;
    const int64_t *target = a->target;
    const double *sw = a->sample_weight;
    /* the check in a loop that vectorises, the first bad target looked for only if there is one; the
     * denominator without weights is the row count (a chain of adds a row was a sixth of a 1M x 10 top-1) */
    int any_bad = 0;
    for (fl_index i = 0; i < a->n_rows; i++) any_bad |= (uint64_t)target[i] >= (uint64_t)n;
    for (fl_index i = 0; any_bad && i < a->n_rows; i++)
        if ((uint64_t)target[i] >= (uint64_t)n) {
            a->bad_position = i;
            a->bad_value = target[i];
            return FL_ERR_INDEX;
        }
    double den = 0.0;
    if (!sw && !(class_weight_in_mean && a->weight)) den = (double)a->n_rows;
    else
        for (fl_index i = 0; i < a->n_rows; i++)
            den += (sw ? sw[i] : 1.0) * (class_weight_in_mean && a->weight ? a->weight[target[i]] : 1.0);
    const double scale = a->reduction == FL_REDUCTION_MEAN ? 1.0 / den : 1.0;
    const fl_index rpb = fl_rows_per_block(n);
    const fl_index n_blocks = fl_n_blocks(a->n_rows, rpb);
    const int nt = fl_threads_for(a->n_threads, a->n_rows * n, n_blocks);
    fl_partials part;
    if (!fl_partials_init(&part, n_blocks)) return FL_ERR_NOMEM;
    const S *X = (const S *)a->scores;
    T *G = (T *)a->grad, *LR = (T *)a->loss_rows;
    FL_FOR_BLOCKS(b, n_blocks, nt, {
        const fl_index r1 = (b + 1) * rpb < a->n_rows ? (b + 1) * rpb : a->n_rows;
        double block_loss = 0.0;
        for (fl_index i = b * rpb; i < r1;) {
            double err[TILE];
            /* the masks need no transposed tile: the whole block at once where no row's error is kept */
            const fl_index k = masks && !LR && !sw ? r1 - i : tiles ? (r1 - i < TILE ? r1 - i : TILE) : 1;
            int count = 0;
#ifdef FL_VF_N
            if (tiles && top1 && masks)
                count = FL_T(top1_error_masks)(a, X + i * a->row_stride, target + i, k, LR || sw ? err : NULL);
            else if (tiles && top1)
                count = FL_T(top1_error_tile)(a, X + i * a->row_stride, target + i, k, LR || sw ? err : NULL);
            else if (tiles) FL_T(ww_loss_tile)(a, X + i * a->row_stride, target + i, k, err);
#endif
            if (tiles && top1 && !sw) { /* 0s and 1s: their sum is exact in any order (no add chain a row) */
                if (LR) for (fl_index r = 0; r < k; r++) LR[i + r] = (T)err[r];
                block_loss += (double)count;
                i += k;
                continue;
            }
            for (fl_index r = 0; r < k; r++, i++) {
                const double swi = sw ? sw[i] : 1.0;
                const double loss = swi * (tiles ? err[r] : row(a, X + i * a->row_stride, (fl_index)target[i],
                                                                 swi * scale, G ? G + i * n : NULL));
                if (LR) LR[i] = (T)loss;
                block_loss += loss;
            }
        }
        part.p[2 * b] = block_loss;
        part.p[2 * b + 1] = 0.0;
    });
    double loss_sum, unused;
    fl_partials_sum(&part, n_blocks, &loss_sum, &unused);
    fl_partials_free(&part);
    a->loss_total = fl_reduce(a->reduction, loss_sum, den);
    return FL_OK;
}

int FL_IMPL(FL_T(fl_multiclass_hinge))(fl_multiclass_args *a)
{
    return a->kind == FL_HINGE_WESTON_WATKINS ? FL_T(multiclass_rows)(a, 0, FL_T(weston_watkins_row))
                                              : FL_T(multiclass_rows)(a, 1, FL_T(crammer_singer_row));
}

int FL_IMPL(FL_T(fl_zero_one_multiclass))(fl_multiclass_args *a)
{
    return FL_T(multiclass_rows)(a, 0, FL_T(top1_error_row));
}
