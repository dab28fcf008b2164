# Linear minimax (Remez exchange) fits in mpmath for the vmath.h polynomials.
import struct

import mpmath as mp

mp.mp.dps = 50

def remez(target, weight, powers, a, b, iters=40, grid=3000, verbose=False):
    """minimise max |weight(x)*(target(x) - sum c_j x^p_j)| over [a,b]."""
    n = len(powers)
    # initial reference: Chebyshev extrema
    ref = [ (a+b)/2 + (b-a)/2*mp.cos(mp.pi*(n-i)/n) + (b-a)*mp.mpf('0.013')*(1 - abs(2*i-n)/mp.mpf(n)) for i in range(n+1)]
    ref = [x if abs(x) > (b-a)*1e-3 else x + (b-a)*0.02 for x in ref]
    xs = [ (a+b)/2 + (b-a)/2*mp.cos(mp.pi*(grid-i)/grid) for i in range(grid+1)]
    xs = [x for x in xs if x != 0]
    for it in range(iters):
        A = mp.matrix(n+1, n+1); rhs = mp.matrix(n+1, 1)
        for i, x in enumerate(ref):
            for j, p in enumerate(powers): A[i, j] = x**p
            A[i, n] = (-1)**i / weight(x)
            rhs[i] = target(x)
        sol = mp.lu_solve(A, rhs)
        c = [sol[j] for j in range(n)]
        err = lambda x: weight(x)*(target(x) - sum(cj*x**p for cj, p in zip(c, powers)))
        es = [err(x) for x in xs]
        # segment maxima between sign changes
        segs = []; cur = (0, es[0])
        for i in range(1, len(xs)):
            if mp.sign(es[i]) != mp.sign(cur[1]) and es[i] != 0:
                segs.append(cur); cur = (i, es[i])
            elif abs(es[i]) > abs(cur[1]): cur = (i, es[i])
        segs.append(cur)
        mxall = max(abs(e) for _, e in segs)
        while len(segs) > n+1 or (len(segs) > 2 and min(abs(e) for _, e in segs) < mxall*mp.mpf('1e-3')):
            k = min(range(len(segs)), key=lambda i: abs(segs[i][1]))
            if len(segs) <= n+1 and abs(segs[k][1]) >= mxall*mp.mpf('1e-3'): break
            if k == 0 or k == len(segs)-1: segs.pop(k)
            else:
                l, r = segs[k-1], segs[k+1]
                segs[k-1:k+2] = [l if abs(l[1]) >= abs(r[1]) else r]
        if len(segs) < n+1:
            print("segs", len(segs), "need", n+1, "iter", it); break
        ref = [xs[i] for i, _ in segs]
        lev = min(abs(e) for _, e in segs); mx = max(abs(e) for e in es)
        if verbose: print('  it', it, mp.nstr(lev,5), mp.nstr(mx,5))
        if mx/lev < 1.0001: break
    return c, max(abs(e) for e in es)

def show(name, c, powers, maxe, ctype):
    print(f"# {name}: max weighted err {mp.nstr(maxe, 5)}  (log2 {mp.nstr(mp.log(maxe,2),4)})")
    for cj, p in zip(c, powers):
        if ctype == 'f': print(f"  x^{p}: {float(mp.mpf(cj)):.9e}f")
        else: print(f"  x^{p}: {float(cj):.17e}")

ln2 = mp.log(2); h = ln2/2
# exp f32: exp(r) ~ 1 + r + sum c_j r^j (j=2..6), relative error
pw = list(range(2, 7))
c, e = remez(lambda r: mp.exp(r)-1-r, lambda r: 1/mp.exp(r), pw, -h*1.01, h*1.01)
show("exp f32", c, pw, e, 'f')
# exp f64: j=2..11
pw = list(range(2, 12))
c, e = remez(lambda r: mp.exp(r)-1-r, lambda r: 1/mp.exp(r), pw, -h*1.001, h*1.001)
show("exp f64", c, pw, e, 'd')
# log f32: log(1+f) ~ f - f^2/2 + sum c_j f^j (j=3..), relative error
a, b = mp.sqrt(0.5)-1, mp.sqrt(2)-1
for deg in (9, 10, 11):
    pw = list(range(3, deg+1))
    c, e = remez(lambda f: mp.log1p(f)-f+f*f/2, lambda f: 1/abs(mp.log1p(f)) if f != 0 else mp.mpf(1)/mp.mpf('1e-30'), pw, a*1.001, b*1.001)
    show(f"log f32 deg{deg}", c, pw, e, 'f')
# log1p f64 of the 16-entry table log (fl__vlog1p_tab_abs_f64): z + z^2 (-1/2 + z Q(z)), Q of degree 5, the
# absolute error over the table's z: m in interval i (its bits: OFF + i 2^48 up to the next), z = m invc_i - 1
invc = [1.391304347826087, 1.3333333333333333, 1.28, 1.2307692307692308, 1.1851851851851851, 1.1428571428571428,
        1.103448275862069, 1.0666666666666667, 1.032258064516129, 1.0, 0.9411764705882353, 0.8888888888888888,
        0.8421052631578947, 0.8, 0.7619047619047619, 0.7272727272727273]


def dbl(b):
    return struct.unpack('<d', struct.pack('<Q', b))[0]


zs = [dbl(0x3fe6800000000000 + ((i + e) << 48) - e) * invc[i] - 1 for i in range(16) for e in (0, 1)]
pw = list(range(3, 9))
c, e = remez(lambda z: mp.log1p(z)-z+z*z/2, lambda z: mp.mpf(1), pw, mp.mpf(min(zs))*1.001, mp.mpf(max(zs))*1.001)
show("log1p f64 table, absolute", c, pw, e, 'd')
