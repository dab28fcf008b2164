"""The typed-usage file (tests/typed_usage.py, type-checked by mypy in CI) also runs: its calls are real ones."""
import pathlib
import runpy


def test_typed_usage_file_runs(capsys):
    runpy.run_path(str(pathlib.Path(__file__).with_name("typed_usage.py")), run_name="__main__")
    printed = capsys.readouterr().out
    assert printed.count("\n") == 4, printed  # one line per function of the file
    assert "'n_rows': 16" in printed and "BinaryEvalResult(" in printed
