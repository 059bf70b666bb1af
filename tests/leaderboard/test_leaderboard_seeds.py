"""Runs that differ only in seed become one row with mean, std and n."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from support.records import make_record

from prunebench.leaderboard.cost import with_costs
from prunebench.leaderboard.seeds import aggregate_seeds
from prunebench.leaderboard.store import normalize


def _runs(*records: dict) -> pd.DataFrame:
    return with_costs(pd.DataFrame([normalize(r, f"test/{i}") for i, r in enumerate(records)]))


def test_mean_std_and_n_over_seeds():
    rows = aggregate_seeds(_runs(*(make_record("ltp", seed=s, top1=t) for s, t in [(0, 0.90), (1, 0.91), (2, 0.95)])))
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["n"] == 3 and row["top1_n"] == 3
    assert row["top1"] == pytest.approx(0.92)
    assert row["top1_std"] == pytest.approx(pd.Series([0.90, 0.91, 0.95]).std(ddof=1))
    assert row["seeds"] == [0, 1, 2]
    assert len(row["trails"]) == 3


def test_one_seed_has_no_spread_and_missing_values_are_not_counted():
    rows = aggregate_seeds(_runs(make_record("ltp", seed=0), make_record("ltp", seed=1, epochs_to_sparsity=None)))
    row = rows.iloc[0]
    assert row["epochs_to_sparsity_n"] == 1 and math.isnan(row["epochs_to_sparsity_std"])
    single = aggregate_seeds(_runs(make_record("global", seed=0))).iloc[0]
    assert single["n"] == 1 and math.isnan(single["top1_std"])


@pytest.mark.parametrize(
    "change",
    [
        {"hparams": {"lambda0": 9e-6, "t0": 1e-3}},
        {"epochs": 20},
        {"input_size": [3, 64, 64]},
        {"model": "resnet56"},
        {"target_compression": 10.0},
    ],
)
def test_runs_that_differ_in_more_than_the_seed_stay_apart(change):
    rows = aggregate_seeds(_runs(make_record("ltp", seed=0), make_record("ltp", seed=1, **change)))
    assert sorted(rows["n"]) == [1, 1]


def test_config_decides_and_ignores_where_a_run_was_stored():
    config = {"seed": 0, "experiment": "a", "output_dir": "/x", "data": {"name": "cifar10", "root": "/data", "num_workers": 4},
              "optimizer": {"lr": 0.1}}  # fmt: skip
    moved = {**config, "seed": 1, "experiment": "b", "output_dir": "/y", "data": {**config["data"], "root": "/elsewhere", "num_workers": 0}}
    other_lr = {**config, "seed": 2, "optimizer": {"lr": 0.01}}
    rows = aggregate_seeds(_runs(make_record(seed=0, config=config), make_record(seed=1, config=moved), make_record(seed=2, config=other_lr)))
    assert sorted(rows["n"]) == [1, 2]
