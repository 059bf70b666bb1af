"""Terminal, markdown, CSV and JSON views: same rows, escaped strings, stored units."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from support.records import make_record, sample_results, write_runs

from prunebench.leaderboard import build_leaderboard, render_leaderboard
from prunebench.leaderboard.views import terminal
from prunebench.leaderboard.views.columns import COLUMNS


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = sample_results(tmp_path_factory.mktemp("results"))
    markup = make_record("global", seed=3, top1=0.5, density=0.9, hparams={"schedule": "[/bold] [red]x[/red]"}, run_id="[bold]run")
    return write_runs(root, [markup])


def test_terminal_table_escapes_markup_from_results(results):
    text = render_leaderboard(results, fmt="table", wide=True)
    assert "[/bold] [red]x[/red]" in text  # shown literally; unescaped it would raise a MarkupError or vanish
    assert "RunFailed: loss is nan <b>at</b> epoch 3" in text
    assert "cifar10 · resnet20 · 3x32x32 · unstructured" in text and "failed runs" in text


def test_terminal_colours_only_when_asked(results):
    board = build_leaderboard(results)
    assert "\x1b[" not in terminal.render(board) and "\x1b[" in terminal.render(board, color=True)


def test_markdown_escapes_html_and_pipes(results):
    text = render_leaderboard(results, fmt="markdown")
    assert "<b>" not in text and "&lt;b&gt;at&lt;/b&gt;" in text
    assert "<script>" not in text
    table = [line for line in text.splitlines() if line.startswith("| 1 |")]
    assert table and all(line.count(" | ") == len(COLUMNS) - 1 for line in table)  # one cell a column: no stray pipes


def test_json_holds_tracks_rows_failed_runs_in_stored_units(results):
    document = json.loads(render_leaderboard(results, fmt="json", sort="compression"))
    assert document["sort"] == "compression"
    track = next(t for t in document["tracks"] if t["track_granularity"] == "unstructured")
    ranked = [r for r in track["rows"] if r["kind"] == "measured"]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    rates = [r["compression_rate"] for r in ranked]
    assert rates == sorted(rates, reverse=True)
    ltp = next(r for r in ranked if r["method"] == "ltp")
    assert ltp["n"] == 3 and ltp["top1"] == pytest.approx(0.9) and ltp["top1_std"] == pytest.approx(0.01)
    assert track["reference"]["top1"] == pytest.approx(0.925)
    assert [f["error"] for f in document["failed"]] == ["RunFailed: loss is nan <b>at</b> epoch 3"]


def test_csv_is_one_flat_table(results, tmp_path):
    out = tmp_path / "board.csv"
    text = render_leaderboard(results, fmt="csv", out=out)
    assert out.read_text() == text
    frame = pd.read_csv(io.StringIO(text))
    assert set(frame["kind"]) == {"measured", "failed"}
    assert frame.loc[frame["kind"] == "measured", "rank"].notna().all()
    assert frame.loc[frame["kind"] == "failed", "rank"].isna().all()
    runs = {run for ids in frame["run_ids"].dropna() for run in json.loads(ids)}
    assert "[bold]run" in runs


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_table_fits_the_terminal_and_always_shows_top1(results, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    board = build_leaderboard(results)
    text = terminal.render(board)
    assert max(len(line) for line in text.splitlines()) <= width
    for track in board.tracks:
        for row in track.rows[track.rows["kind"] == "measured"].to_dict("records"):
            assert f"{100 * row['top1']:.2f}" in text, (width, row["method"])


def test_the_wide_table_has_every_column_and_the_compact_one_the_main_ones(results, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    board = build_leaderboard(results)
    header = next(line for line in terminal.render(board, wide=True).splitlines() if "compression" in line)
    assert all(column.header in header for column in COLUMNS)
    compact = next(line for line in terminal.render(board).splitlines() if "compression" in line)
    assert "top-1 %" in compact and "method" in compact and "FLOPs" not in compact and "epochs→sparsity" not in compact

