exec(open('fit.py').read().split("ln2 = mp.log(2)")[0])
ln2 = mp.log(2); h = ln2/2
for deg in (11, 12):
    pw = list(range(2, deg+1))
    c, e = remez(lambda r: mp.expm1(r)-r, lambda r: 1/abs(mp.expm1(r)), pw, -h*1.001, h*1.001, verbose=False, grid=2000)
    show(f"expm1 f64 deg{deg} (rel. to expm1)", c, pw, e, 'd')
