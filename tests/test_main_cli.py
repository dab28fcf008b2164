"""python -m fastloss: --help lists the subcommands with a line each, --version, each subcommand's own --help."""
import os
import pathlib
import subprocess
import sys

import pytest

import fastloss as fl

ENV = dict(os.environ, PYTHONPATH=str(pathlib.Path(fl.__file__).parents[1]))


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastloss", *args], capture_output=True, text=True, env=ENV,
                          timeout=60)


def test_help_lists_every_subcommand_with_a_line():
    res = run("--help")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("usage: python -m fastloss [demo | bench | eval]")
    for name in ("demo", "bench", "eval"):
        described = [line for line in lines if line.split()[:1] == [name]]
        assert len(described) == 1, f"no line of its own for {name!r} in:\n{res.stdout}"
        assert len(described[0].split()) > 3, described[0]  # the name and what it does
    assert "--repeat" in res.stdout and "--version" in res.stdout


def test_version():
    res = run("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"fastloss {fl.__version__}"


@pytest.mark.parametrize("sub, prog, option", [
    ("demo", "python -m fastloss", "--repeat"),
    ("bench", "python -m fastloss bench", "--quick"),
    ("eval", "python -m fastloss eval", "--topk"),
])
def test_each_subcommand_has_its_own_help(sub, prog, option):
    res = run(sub, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: {prog}"), res.stdout
    assert option in res.stdout


def test_unknown_option_is_a_usage_error():
    res = run("--no-such-option")
    assert res.returncode == 2
    assert "unrecognized arguments: --no-such-option" in res.stderr
