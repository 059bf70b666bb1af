"""`prunebench leaderboard` on the command line: output, and bad input as one line with exit 2."""

from __future__ import annotations

import math

import pytest
from scipy.stats import t
from support.cli import CliResult, assert_one_line_error, run_cli
from support.records import sample_results

from prunebench.cli import main as cli_main


@pytest.fixture
def cli(capsys):
    def run(*args: str) -> CliResult:
        code = cli_main(["leaderboard", *args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return sample_results(tmp_path_factory.mktemp("results"))


def test_a_100_column_terminal_gets_lines_of_at_most_100_with_every_top1(results):
    result = run_cli("leaderboard", str(results), env={"COLUMNS": "100"})
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    dense, ltp = (f"{100 * t.ppf(0.975, n - 1) * std / math.sqrt(n):.2f}" for n, std in ((2, 0.005 * math.sqrt(2)), (3, 0.01)))
    for top1 in (f"92.50 ± {dense} (n 2)", f"90.00 ± {ltp} (n 3)", "86.00 (n 1)", "88.00", "80.00", "87.00"):  # every row of sample_results
        assert top1 in result.stdout, top1


def test_prints_the_table(cli, results):
    result = cli(str(results))
    assert result.returncode == 0, result.stderr
    assert "cifar10 · resnet20 · 3x32x32 · unstructured" in result.stdout and result.stderr == ""


def test_writes_html_to_out(cli, results, tmp_path):
    out = tmp_path / "board.html"
    result = cli(str(results), "--format", "html", "--sort", "top1", "--out", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["{missing}"], ["no such file or directory"]),
        (["{empty}"], ["holds no result.json files"]),
        (["{results}", "--sort", "speed"], ["--sort 'speed'", "compression | flops | top1 | top5 | epochs"]),
        (["{results}", "--format", "pdf"], ["--format 'pdf'", "table | markdown | csv | json | html"]),
        (["{results}", "--out", "{empty}"], ["--out", "is a directory"]),
        (["{results}", "--out", "{file}/board.html"], ["--out", "does not exist"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, results, tmp_path, args, fragments):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "results": results, "file": tmp_path / "file"}
    result = cli(*(arg.format(**paths) for arg in args))
    assert_one_line_error(result, *fragments)
    assert result.stdout == ""


def test_as_a_user_runs_it(tmp_path):
    assert_one_line_error(run_cli("leaderboard", str(tmp_path / "missing")), "no such file or directory")


def test_results_default_to_runs_in_the_working_directory(tmp_path):
    assert_one_line_error(run_cli("leaderboard", cwd=tmp_path), "runs", "no such file or directory")
    sample_results(tmp_path / "runs")
    result = run_cli("leaderboard", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("leaderboard of runs") and "cifar10 · resnet20" in result.stdout
