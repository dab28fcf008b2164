"""python -m fastloss eval: outputs (table, --json), options, errors and exit codes (0 ok, 1 data error, 2 usage)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl

from _eval_helpers import logits_and_target, same_result

ENV = dict(os.environ, PYTHONPATH=str(pathlib.Path(fl.__file__).parents[1]))


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastloss", "eval", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=60)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x, t = logits_and_target(rng, (3000, 50), ignore_every=6, ignore_index=7)
    np.save(d / "x.npy", x.astype(np.float32))
    np.save(d / "t.npy", t)
    np.save(d / "lp.npy", fl.log_softmax(x))
    np.save(d / "t_short.npy", t[:10])
    np.save(d / "t_float.npy", t.astype(np.float64))
    np.save(d / "strings.npy", np.array([["a", "b"]] * 3))
    return d, x.astype(np.float32), t


def test_json_equals_evaluate(files):
    d, x, t = files
    out = run(d / "x.npy", d / "t.npy", "--json", "--ignore-index", 7, "--topk", "1,3,10", "--chunk-mb", 0.01)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got.pop("loss") == "cross_entropy"
    same_result(got, fl.evaluate(x, t, ignore_index=7, topk=(1, 3, 10)))


def test_table(files):
    d, x, t = files
    out = run(d / "x.npy", d / "t.npy", "--ignore-index", "7")
    assert out.returncode == 0, out.stderr
    res = fl.evaluate(x, t, ignore_index=7)
    lines = dict(line.split(None, 1) for line in out.stdout.strip().splitlines())
    assert lines["loss"].strip() == "cross_entropy"
    assert float(lines["cross_entropy"]) == pytest.approx(res.cross_entropy, abs=1e-6)
    assert float(lines["top5_accuracy"]) == pytest.approx(res.accuracy[5], abs=1e-6)
    assert int(lines["n_rows"]) == res.n_rows == np.sum(t != 7)
    assert out.stderr == ""  # no progress bar when stderr is not a terminal


def test_nll_loss_and_progress(files):
    d, x, t = files
    out = run(d / "lp.npy", d / "t.npy", "--loss", "nll_loss", "--ignore-index", "7", "--json", "--progress",
              "--chunk-mb", "0.05")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = fl.nll_loss(np.load(d / "lp.npy"), t, ignore_index=7)
    assert got["nll_loss"] == pytest.approx(float(want), rel=1e-12)
    assert got["perplexity"] == pytest.approx(np.exp(float(want)), rel=1e-12)
    assert "cross_entropy" not in got
    assert "3000" in out.stderr  # the progress bar (tqdm, or the built-in line) counts rows


@pytest.mark.parametrize("case, message", [
    (("missing.npy", "t.npy"), "no such file"),
    (("x.npy", "t_short.npy"), "does not fit"),
    (("x.npy", "t_float.npy"), "integer dtype"),
    (("strings.npy", "t.npy"), "real numeric"),
    (("x.npy", "x.npy"), "integer dtype"),
])
def test_data_errors_exit_1_with_one_line(files, case, message):
    d = files[0]
    out = run(*(d / name for name in case))
    assert out.returncode == 1
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    assert out.stderr.startswith("fastloss eval: error:")


def test_out_of_range_target_exits_1(files, tmp_path):
    d, x, t = files
    bad = t.copy()
    bad[123] = 50
    np.save(tmp_path / "bad.npy", bad)
    out = run(d / "x.npy", tmp_path / "bad.npy")
    assert out.returncode == 1 and "target[123] = 50 is out of bounds" in out.stderr


@pytest.mark.parametrize("args", [(), ("x.npy",), ("x.npy", "t.npy", "--topk", "0"), ("x.npy", "t.npy", "--topk",
                                  "a,b"), ("x.npy", "t.npy", "--loss", "mse"), ("x.npy", "t.npy", "--chunk-mb", "-1"),
                                  ("x.npy", "t.npy", "--bogus")])
def test_usage_errors_exit_2(files, args):
    d = files[0]
    out = run(*(d / a if a.endswith(".npy") else a for a in args))
    assert out.returncode == 2 and "usage:" in out.stderr
