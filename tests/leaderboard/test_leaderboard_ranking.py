"""Pareto front and ordering within a track."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from prunebench.core.errors import UserError
from prunebench.leaderboard.ranking import check_sort, pareto_front, rank


def test_pareto_front_keeps_the_undominated_points():
    top1 = [0.92, 0.90, 0.86, 0.88, 0.80, 0.89]
    compression = [1.0, 5.0, 10.0, 3.0, 2.5, 5.0]
    # 0.88 @ 3x is beaten by 0.90 @ 5x; 0.80 @ 2.5x by several; 0.89 @ 5x by 0.90 @ 5x
    assert pareto_front(top1, compression) == [True, True, True, False, False, False]


def test_pareto_front_ties_and_missing_values():
    assert pareto_front([0.9, 0.9], [4.0, 4.0]) == [True, True]  # equal points do not dominate each other
    assert pareto_front([0.9, math.nan, 0.5], [2.0, 100.0, 1.0]) == [True, False, False]
    assert pareto_front([], []) == []


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "method": ["a", "b", "c", "d"],
        "top1": [0.80, 0.91, 0.85, 0.70],
        "compression_rate": [20.0, 2.0, 4.0, 3.0],
        "flops": [1e6, 9e6, 5e6, 4e6],
        "top5": [0.95, 0.97, 0.90, math.nan],
        "epochs": [30, 10, 20, 5],
    })  # fmt: skip


def test_default_order_puts_the_front_first_then_top1():
    ranked = rank(_rows())
    assert list(ranked["method"]) == ["b", "c", "a", "d"]
    assert list(ranked["pareto"]) == [True, True, True, False]
    assert list(ranked["rank"]) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("compression", ["a", "c", "d", "b"]),
        ("flops", ["a", "d", "c", "b"]),
        ("top1", ["b", "c", "a", "d"]),
        ("top5", ["b", "a", "c", "d"]),  # a missing value goes last
        ("epochs", ["d", "b", "c", "a"]),
    ],
)
def test_sort_keys(sort, expected):
    ranked = rank(_rows(), sort)
    assert list(ranked["method"]) == expected
    assert list(ranked["pareto"]) == [m in {"a", "b", "c"} for m in expected]  # still marked


def test_unknown_sort_key_names_the_choices():
    with pytest.raises(UserError, match="--sort 'speed'.*compression \\| flops \\| top1 \\| top5 \\| epochs"):
        check_sort("speed")
