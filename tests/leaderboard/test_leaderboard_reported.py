"""reported.csv: the papers' numbers, complete and consistent (`make check-reported` finds them in the papers' texts)."""

from __future__ import annotations

import pandas as pd
import pytest

from prunebench.leaderboard.reported import NOT_SHIPPED, load_reported, reported_gaps
from scripts.check_reported import NUMERIC, REACH, missing_numbers, raw_rows
from scripts.check_reported import main as check_reported



def test_every_requested_table_is_transcribed():
    tables = {(r["source"], r["table"]) for r in raw_rows()}
    expected = {("LTP", f"Table {n}") for n in range(3, 8)} | {("DT", "Table 2"), ("OT", "Table IV")}
    expected |= {("PSP", f"Table {n}") for n in range(3, 6)}
    assert tables == expected


def test_rows_are_consistent():
    rows = raw_rows()
    for row in rows:
        assert row["granularity"] in {"unstructured", "structured", "none"}, row
        assert (row["granularity"] == "none") == (row["method"] == "dense"), row
        assert any(row[c] for c in ("top1", "top5", "top1_error", "top5_error", "top1_drop", "top5_drop")), row
        if row["baseline"]:  # names a dense row of the same table, data set and model
            scope = [r for r in rows if (r["source"], r["table"], r["dataset"], r["model"]) == (row["source"], row["table"], row["dataset"], row["model"])]
            assert [r["method"] for r in scope if r["label"] == row["baseline"]] == ["dense"], row


def test_the_transcription_check_finds_numbers_near_their_table_only():
    """scripts/check_reported.py (run against the papers' texts, `make check-reported`) on a made-up paper."""
    row = {column: "" for column in NUMERIC} | {"source": "LTP", "table": "Table 3", "label": "LTP", "top1": "75.8", "params": "25.6M"}
    text = "Table 3: ResNet-50 ... 75.8 and 25.6 params." + " " * (REACH + 10) + "Table 4: 71.1"
    assert missing_numbers([row], {"LTP": text}) == []
    assert missing_numbers([row | {"top5": "92.0"}], {"LTP": text}) == [("LTP", "Table 3", "LTP", "top5", "92.0")]
    assert missing_numbers([row | {"table": "Table 4"}], {"LTP": text}) == [("LTP", "Table 4", "LTP", "top1", "75.8"), ("LTP", "Table 4", "LTP", "params", "25.6")]


def test_the_transcription_check_without_the_papers_is_one_line_exit_2(tmp_path, capsys):
    assert check_reported([str(tmp_path / "absent")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert str(tmp_path / "absent") in line and "not a folder" in line
    assert check_reported([str(tmp_path)]) == 2
    assert "learned-threshold-pruning.txt" in capsys.readouterr().err


def test_spot_checks_against_the_papers():
    rows = load_reported()
    ltp_resnet50 = rows[(rows["source"] == "LTP Table 3") & (rows["method"] == "ltp")].iloc[0]
    assert ltp_resnet50["compression_rate"] == 9.11 and ltp_resnet50["top5"] == pytest.approx(0.920)
    assert ltp_resnet50["epochs_to_sparsity"] == 18
    dt_alexnet = rows[(rows["source"] == "DT Table 2") & (rows["method"] == "dt") & (rows["model"] == "alexnet")].iloc[0]
    assert dt_alexnet["top1_change"] == pytest.approx(-0.0082) and dt_alexnet["compression_rate"] == 11.7
    psp_r18 = rows[(rows["source"] == "PSP Table 4") & (rows["method"] == "psp") & (rows["model"] == "resnet18")].iloc[0]
    assert psp_r18["top1"] == pytest.approx(1 - 0.3037)  # the paper reports errors
    assert psp_r18["top1_change"] == pytest.approx(-(0.3037 - 0.2960))
    ot_vgg = rows[(rows["source"] == "OT Table IV") & (rows["method"] == "ot") & (rows["model"] == "vgg16_bn")]
    assert list(ot_vgg["top1"]) == pytest.approx([0.7202, 0.7198, 0.7216]) and list(ot_vgg["epochs"]) == [91, 93, 105]


def _papers(method: str, rates: list[float], changes: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"method": method, "source": "P T1", "granularity": "unstructured", "compression_counts": "prunable",
                         "compression_rate": rates, "macs_reduction": float("nan"), "top1_change": changes,
                         "top5_change": float("nan")})  # fmt: skip


def _measured(rates: list[float], changes: list[float], method: str = "ltp") -> pd.DataFrame:
    return pd.DataFrame({"method": method, "granularity": "unstructured", "compression_rate": rates, "compression_all": rates,
                         "top1": 0.7, "top5": 0.9, "top1_change": changes, "top5_change": -0.01})  # fmt: skip


def test_vs_paper_meets_a_paper_row_within_5_percent_or_inside_the_papers_sweep_only():
    papers = _papers("ltp", [2.0, 8.0], [-0.01, -0.06])
    gaps = reported_gaps(_measured([2.06, 4.0, 9.0, 1.5], [-0.02, -0.04, -0.07, 0.0]), papers, {})
    assert gaps.loc[0, "reported_ref"] == "P T1 @ 2×" and gaps.loc[0, "gap_top1_change"] == pytest.approx(-0.01)  # within 5 %
    # 4x lies between the paper's 2x and 8x: -1 + (-6 - -1) / 2 = -3.5 points, interpolated over log-compression
    assert gaps.loc[1, "reported_ref"] == "P T1 @ 4× (interpolated)" and gaps.loc[1, "gap_top1_change"] == pytest.approx(-0.005)
    assert gaps.loc[2:, "reported_ref"].isna().all() and gaps.loc[2:, "gap_top1_change"].isna().all()  # 9x, 1.5x: outside
    assert gaps["gap_top1"].isna().all()  # absolute top-1 is never compared for a pruned row
    other = reported_gaps(_measured([2.0], [-0.02], method="dt"), papers, {})
    assert other["reported_ref"].isna().all()  # no paper row of dt


def test_vs_paper_compares_like_with_like_compressions():
    """A paper that counts all parameters (PSP) meets a run's compression over all parameters."""
    papers = _papers("psp", [4.0], [-0.01]).assign(compression_counts="all")
    measured = _measured([6.0], [-0.02], method="psp").assign(compression_all=4.1)
    assert reported_gaps(measured, papers, {}).loc[0, "reported_ref"] == "P T1 @ 4×"
    assert reported_gaps(measured.assign(compression_all=6.0), papers, {})["reported_ref"].isna().all()


# --- units: every dense baseline's count, against our MAC counter -------------------------------

CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}


def _dense_counts() -> list[dict[str, str]]:
    """Dense rows that give a MAC or FLOP count."""
    return [r for r in raw_rows() if r["granularity"] == "none" and (r["macs"] or r["flops"])]


def _shipped_counts() -> list[dict[str, str]]:
    from prunebench.harness.models import available

    return [r for r in _dense_counts() if r["model"] in available()]


def test_every_dense_count_is_checked_or_listed_as_not_shipped():
    from prunebench.harness.models import available

    unshipped = {r["model"] for r in _dense_counts() if r["model"] not in available()}
    assert unshipped <= NOT_SHIPPED  # the networks we do not ship are listed, so no count is skipped silently
    checked = {(r["source"], r["table"], r["dataset"], r["model"]) for r in _shipped_counts()}
    assert checked == {
        ("PSP", "Table 3", "cifar10", "resnet56"), ("PSP", "Table 3", "cifar100", "resnet56"),
        ("PSP", "Table 4", "imagenet", "resnet18"), ("PSP", "Table 4", "imagenet", "resnet50"),
        ("PSP", "Table 4", "imagenet", "densenet121"), ("OT", "Table IV", "imagenet", "vgg16_bn"),
        ("PSP", "Table 3", "cifar10", "densenet40_k12"), ("PSP", "Table 3", "cifar100", "densenet40_k12"),
        ("PSP", "Table 3", "cifar10", "densenet100_k12"), ("PSP", "Table 3", "cifar100", "densenet100_k12"),
        ("OT", "Table IV", "imagenet", "preresnet50"),
    }  # fmt: skip


@pytest.mark.parametrize("row", _shipped_counts(), ids=lambda r: f"{r['source']}-{r['table']}-{r['dataset']}-{r['model']}")
def test_dense_baseline_macs_match_our_counter(row):
    """A paper's count filed as MACs is within 10% of count_macs on the same model and input; one
    filed as FLOPs (or left in the FLOPs column) would be off by 2x or missing here."""
    import torch

    from prunebench.core.metrics import count_macs
    from prunebench.harness.models import create
    from prunebench.leaderboard.store import STANDARD_INPUT

    shape = tuple(int(n) for n in (row["input_size"] or STANDARD_INPUT[row["dataset"]]).split("x"))
    torch.manual_seed(0)
    ours = count_macs(create(row["model"], CLASSES[row["dataset"]], shape[0], shape[-1]), shape)
    reported = load_reported()
    paper = reported[(reported["source"] == f"{row['source']} {row['table']}") & (reported["dataset"] == row["dataset"])
                     & (reported["model"] == row["model"]) & (reported["label"] == row["label"])]["macs"]  # fmt: skip
    assert len(paper) == 1 and paper.iloc[0] > 0, "the paper's count is not in the MACs column"
    assert ours == pytest.approx(paper.iloc[0], rel=0.10)
