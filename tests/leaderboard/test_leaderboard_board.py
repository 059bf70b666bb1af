"""The assembled leaderboard: tracks, dense references, failed runs, papers' rows, bad files."""

from __future__ import annotations

import pandas as pd
import pytest
from support.records import failed_record, make_record, sample_results, write_runs

from prunebench.core.errors import UserError
from prunebench.leaderboard import build_leaderboard, render_leaderboard
from prunebench.leaderboard.tracks import TrackKey


def _track(board, dataset="cifar10", model="resnet20", size="3x32x32", granularity="unstructured"):
    (track,) = [t for t in board.tracks if t.key == TrackKey(dataset, model, size, granularity)]
    return track


def test_tracks_separate_data_sets_models_input_sizes_and_granularity(tmp_path):
    write_runs(tmp_path, [
        make_record("dense", top1=0.93, density=1.0),
        make_record("ltp", top1=0.90),
        make_record("ns", top1=0.88, density=0.5),
        make_record("ltp", top1=0.70, dataset="cifar100"),
        make_record("ltp", top1=0.60, input_size=[3, 64, 64]),
        make_record("ltp", top1=0.50, model="resnet56"),
    ])  # fmt: skip
    board = build_leaderboard(tmp_path, reported="none")
    assert [t.key for t in board.tracks] == [
        TrackKey("cifar10", "resnet20", "3x32x32", "structured"),
        TrackKey("cifar10", "resnet20", "3x32x32", "unstructured"),
        TrackKey("cifar10", "resnet20", "3x64x64", "unstructured"),
        TrackKey("cifar10", "resnet56", "3x32x32", "unstructured"),
        TrackKey("cifar100", "resnet20", "3x32x32", "unstructured"),
    ]
    unstructured, structured = _track(board), _track(board, granularity="structured")
    assert list(unstructured.rows["method"]) == ["dense", "ltp"]
    assert list(structured.rows["method"]) == ["dense", "ns"]  # the dense run is the reference of both
    assert unstructured.rows.set_index("method").loc["ltp", "top1_change"] == pytest.approx(0.90 - 0.93)
    assert structured.rows.set_index("method").loc["ns", "top1_change"] == pytest.approx(0.88 - 0.93)
    other = _track(board, size="3x64x64")
    assert other.reference is None and other.rows["top1_change"].isna().all()


def test_missing_granularity_is_derived(tmp_path):
    dense, ltp = make_record("dense", top1=0.93, density=1.0), make_record("ltp")
    for record in (dense, ltp):
        del record["granularity"], record["input_size"]
    board = build_leaderboard(write_runs(tmp_path, [dense, ltp]), reported="none")
    assert [t.key for t in board.tracks] == [TrackKey("cifar10", "resnet20", "3x32x32", "unstructured")]
    assert list(board.tracks[0].rows["granularity"]) == ["none", "unstructured"]


def test_failed_runs_are_listed_apart_and_never_ranked(tmp_path):
    write_runs(tmp_path, [make_record("ltp", seed=0, top1=0.9), failed_record("ltp", seed=1, error="RunFailed: diverged")])
    board = build_leaderboard(tmp_path, reported="none")
    (track,) = board.tracks
    assert track.rows["n"].tolist() == [1]  # the failed seed is not in the aggregate
    assert board.failed[["method", "seed", "error"]].values.tolist() == [["ltp", 1, "RunFailed: diverged"]]


def test_only_failed_runs_give_no_tracks(tmp_path):
    board = build_leaderboard(write_runs(tmp_path, [failed_record()]), reported="none")
    assert board.tracks == [] and len(board.failed) == 1


def test_reported_rows_stay_apart_from_measured_ones(tmp_path):
    imagenet = {"dataset": "imagenet", "model": "mobilenet_v2", "input_size": [3, 224, 224]}
    write_runs(tmp_path, [
        make_record("dense", seed=0, top1=0.70, density=1.0, **imagenet),
        make_record("ltp", seed=0, top1=0.68, density=0.5, **imagenet),
        make_record("ltp", seed=1, top1=0.66, density=0.5, **imagenet),
    ])  # fmt: skip
    board = build_leaderboard(tmp_path)
    (track,) = board.tracks  # matched: only tracks with measured runs, none from the papers alone
    rows = track.rows
    measured, reported = rows[rows["kind"] == "measured"], rows[rows["kind"] == "reported"]
    assert list(rows["kind"]) == ["measured"] * 2 + ["reported"] * 7  # measured first, papers after
    assert set(reported["source"]) == {"LTP Table 5"}
    assert reported["rank"].isna().all() and not reported["pareto"].fillna(False).astype(bool).any()
    ltp = measured.set_index("method").loc["ltp"]
    assert ltp["n"] == 2 and ltp["top1"] == pytest.approx(0.67)  # the papers' 70.0 etc. are not averaged in
    # the reported LTP row at 2x compression: -1.8 points against its own baseline; absolute
    # top-1 is not compared (the two dense baselines differ)
    assert ltp["reported_ref"] == "LTP Table 5 @ 2×"
    assert pd.isna(ltp["gap_top1"])
    assert ltp["gap_top1_change"] == pytest.approx((0.67 - 0.70) - (0.700 - 0.718))
    # a dense run meets a paper's dense row only by protocol: this one carries no config
    assert pd.isna(measured.set_index("method").loc["dense", "gap_top1"])


def test_reported_modes(tmp_path):
    write_runs(tmp_path, [make_record("ltp")])
    assert len(build_leaderboard(tmp_path, reported="all").tracks) > 20
    assert [t.key.model for t in build_leaderboard(tmp_path, reported="matched").tracks] == ["resnet20"]
    with pytest.raises(UserError, match="--reported 'some'"):
        build_leaderboard(tmp_path, reported="some")


def test_a_corrupt_file_is_reported_and_skipped(tmp_path, capsys):
    sample_results(tmp_path)
    bad = tmp_path / "unit" / "broken-run" / "result.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"run_id": "broken", "top1": 0.9')  # cut off mid-write by a crashed copy
    lacking = tmp_path / "unit" / "old-run" / "result.json"
    lacking.parent.mkdir(parents=True)
    lacking.write_text('{"run_id": "old", "status": "finished"}')
    text = render_leaderboard(tmp_path, fmt="json")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warnings) == 2
    assert str(bad) in warnings[0] and "not valid JSON" in warnings[0]
    assert str(lacking) in warnings[1] and "lacks required keys" in warnings[1]
    assert '"run_id": "broken"' not in text
    board = build_leaderboard(tmp_path)
    assert sum(int(t.rows["n"].sum()) for t in board.tracks if t.key.granularity == "unstructured") == 8  # all good runs


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda p: p / "nowhere", "no such file or directory"),
        (lambda p: p, "holds no result.json files"),
    ],
)
def test_results_path_without_results(tmp_path, make_path, message):
    with pytest.raises(UserError, match=message):
        build_leaderboard(make_path(tmp_path))


def test_a_directory_of_only_broken_files_is_an_error(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "result.json").write_text("not json")
    with pytest.raises(UserError, match="no readable result records"):
        build_leaderboard(tmp_path)


def test_key_hyper_parameters_are_those_that_vary_within_a_method(tmp_path):
    board = build_leaderboard(sample_results(tmp_path), reported="none")
    rows = _track(board).rows.set_index("key_hparams")
    assert sorted(rows.index[rows["method"] == "global"]) == ["schedule=gradual", "schedule=one_shot", "schedule=one_shot update_every=5"]
    assert list(rows.index[rows["method"] == "ltp"]) == [""]  # one row: nothing differs, no defaults listed
