/* kl_div_bound.c: the error of the table log's log m (fl__vlog_tab_parts_f32_n: lm = logc_i + log1p(z), its
 * table and polynomial those of the library's float table log) over every float m in [0.708, 1.416), the measure
 * behind kl_div's float form (distributions.c, fl__kl_div_vfloat): |lm - log m| <= (A |lm| + B |z| + C) 2^-24
 * with A = 1 (lm's own rounding) and C = 2^-11; prints the least B that holds (the bound takes 2) and logc_i's
 * distance to -log(invc_i). Against logl (x87, 64-bit mantissa). The same operations at AVX2 and AVX-512.
 * Build: gcc -O2 -mavx2 -mfma -I../../src_c kl_div_bound.c -o kl_div_bound -lm   (or -mavx512f -mavx512dq ...) */
#include "vmath.h"
#include <stdio.h>
#include <string.h>

int main(void)
{
    const uint32_t off = 0x3f355556u; /* FL__LOGT_OFF: m in [off, 2 off) */
    double worst_b = 0.0, worst_m = 0.0, max_z = 0.0, max_lm = 0.0, worst_c = 0.0;
    for (uint32_t t0 = 0; t0 < (1u << 23); t0 += FL_VF_N) {
        fl_vf u, k, lm, z;
        for (int l = 0; l < FL_VF_N; l++) {
            const uint32_t b = ((t0 + (uint32_t)l) & 0x7fffffu) + off;
            memcpy((float *)&u + l, &b, 4);
        }
        fl__vlog_tab_parts_f32_n(&u, &k, &lm, &z, 1);
        for (int l = 0; l < FL_VF_N; l++) {
            const double m = u[l], e = (double)fabsl((long double)lm[l] - logl((long double)m)) * 0x1p24;
            const double need = e - fabs((double)lm[l]) - 0x1p-11; /* beyond A |lm| + C */
            if (k[l] != 0.0f) { printf("k = %g at m = %.9g: not a mantissa\n", (double)k[l], m); return 1; }
            if (fabs(z[l]) > max_z) max_z = fabs(z[l]);
            if (fabs(lm[l]) > max_lm) max_lm = fabs(lm[l]);
            if (z[l] == 0.0f) {
                if (need > worst_c) worst_c = need;
            } else if (need / fabs(z[l]) > worst_b) {
                worst_b = need / fabs(z[l]), worst_m = m;
            }
        }
    }
    printf("least B %.4f (at m = %.9g); where z = 0, beyond C: %.3g; max |z| %.5f, max |lm| %.5f\n", worst_b, worst_m,
           worst_c, max_z, max_lm);
    return worst_b <= 2.0 && worst_c <= 0.0 ? 0 : 1;
}
