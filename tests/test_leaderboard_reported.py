"""reported.csv: the papers' numbers, complete, consistent, and found in the papers' texts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from leaderboard.reported import REPORTED_CSV, load_reported, reported_gaps

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"  # shared/ sits beside the checkout
PAPER_FILES = {
    "LTP": "learned-threshold-pruning.txt",
    "DT": "dynamic-thresholding.txt",
    "PSP": "parameterized-structured-pruning.txt",
    "OT": "optimal-thresholding.txt",
}
NUMERIC = ("top1", "top5", "top1_error", "top5_error", "top1_drop", "top5_drop", "compression_rate", "macs_reduction", "params", "macs", "flops")


def _raw() -> list[dict[str, str]]:
    with REPORTED_CSV.open(newline="") as stream:
        return list(csv.DictReader(stream))


def test_every_requested_table_is_transcribed():
    tables = {(r["source"], r["table"]) for r in _raw()}
    expected = {("LTP", f"Table {n}") for n in range(3, 8)} | {("DT", "Table 2"), ("OT", "Table IV")}
    expected |= {("PSP", f"Table {n}") for n in range(3, 6)}
    assert tables == expected


def test_rows_are_consistent():
    rows = _raw()
    for row in rows:
        assert row["granularity"] in {"unstructured", "structured", "none"}, row
        assert (row["granularity"] == "none") == (row["method"] == "dense"), row
        assert any(row[c] for c in ("top1", "top5", "top1_error", "top5_error", "top1_drop", "top5_drop")), row
        if row["baseline"]:  # names a dense row of the same table, data set and model
            scope = [r for r in rows if (r["source"], r["table"], r["dataset"], r["model"]) == (row["source"], row["table"], row["dataset"], row["model"])]
            assert [r["method"] for r in scope if r["label"] == row["baseline"]] == ["dense"], row


def _near_table(text: str, table: str, reach: int = 2500) -> str:
    """The paper's text around every mention of `table` ('Table IV', 'Table 3'), where its body is."""
    number = table.split()[-1]
    spans = [(m.start() - reach, m.end() + reach) for m in re.finditer(rf"table\s*:?\s*{number}\b", text, re.IGNORECASE)]
    return "\n".join(text[max(0, a) : b] for a, b in spans)


@pytest.mark.skipif(not PAPERS.is_dir(), reason="paper texts not available on this machine")
def test_every_number_occurs_near_its_table_in_the_paper():
    texts = {source: (PAPERS / name).read_text() for source, name in PAPER_FILES.items()}
    for row in _raw():
        near = _near_table(texts[row["source"]], row["table"])
        for column in NUMERIC:
            value = re.sub(r"[KMG]$", "", row[column])
            if value and value != "1":  # the dense rows' 1x is implied, not printed
                assert value in near, (row["source"], row["table"], row["label"], column, value)


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


def test_gap_uses_the_nearest_reported_row_of_the_same_method():
    reported = pd.DataFrame({
        "method": ["ltp", "ltp", "global"], "source": ["P T1"] * 3, "compression_rate": [2.0, 8.0, 4.0],
        "macs_reduction": [float("nan")] * 3, "epochs": [float("nan")] * 3,
        "top1": [0.75, 0.70, 0.72], "top5": [float("nan")] * 3, "top1_change": [-0.01, -0.06, -0.03], "top5_change": [float("nan")] * 3,
    })  # fmt: skip
    measured = pd.DataFrame({
        "method": ["ltp", "dt"], "compression_rate": [6.0, 6.0], "macs_reduction": [6.0, 6.0], "epochs": [10.0, 10.0],
        "top1": [0.71, 0.70], "top5": [0.9, 0.9], "top1_change": [-0.04, -0.05], "top5_change": [-0.01, -0.01],
    })  # fmt: skip
    gaps = reported_gaps(measured, reported)
    assert gaps.loc[0, "reported_ref"] == "P T1 @ 8×"
    assert gaps.loc[0, "gap_top1"] == pytest.approx(0.01) and gaps.loc[0, "gap_top1_change"] == pytest.approx(0.02)
    assert pd.isna(gaps.loc[1, "reported_ref"]) and pd.isna(gaps.loc[1, "gap_top1"])  # no paper row for dt


# --- units: every dense baseline's count, against our MAC counter -------------------------------

CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}
# Dense baselines with a count whose network we do not ship: listed, so none is skipped silently.
NOT_SHIPPED = {"nasnet_a", "mobilenet_v2_1.4", "densenet_c63", "densenet_c87"}


def _dense_counts() -> list[dict[str, str]]:
    """Dense rows that give a MAC or FLOP count."""
    return [r for r in _raw() if r["granularity"] == "none" and (r["macs"] or r["flops"])]


def _shipped_counts() -> list[dict[str, str]]:
    from harness.models import available

    return [r for r in _dense_counts() if r["model"] in available()]


def test_every_dense_count_is_checked_or_listed_as_not_shipped():
    from harness.models import available

    unshipped = {r["model"] for r in _dense_counts() if r["model"] not in available()}
    assert unshipped == NOT_SHIPPED
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

    from core.metrics import count_macs
    from harness.models import create
    from leaderboard.store import STANDARD_INPUT

    shape = tuple(int(n) for n in (row["input_size"] or STANDARD_INPUT[row["dataset"]]).split("x"))
    torch.manual_seed(0)
    ours = count_macs(create(row["model"], CLASSES[row["dataset"]], shape[0], shape[-1]), shape)
    reported = load_reported()
    paper = reported[(reported["source"] == f"{row['source']} {row['table']}") & (reported["dataset"] == row["dataset"])
                     & (reported["model"] == row["model"]) & (reported["label"] == row["label"])]["macs"]  # fmt: skip
    assert len(paper) == 1 and paper.iloc[0] > 0, "the paper's count is not in the MACs column"
    assert ours == pytest.approx(paper.iloc[0], rel=0.10)
