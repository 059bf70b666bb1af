"""The one owner of a seed interval: mean ± half a two-sided 95 % t-interval over n seeds.

Every view, the Pareto front, the matched points and the margins read their interval here, so
that "± 0.40" means the same thing wherever it is shown. With one seed there is no interval
(nan), never a zero that would look like certainty.
"""

from __future__ import annotations

import math
from functools import lru_cache

CONFIDENCE = 0.95


@lru_cache(maxsize=256)
def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided t quantile for `df` degrees of freedom (cached: a board asks per row)."""
    from scipy.stats import t  # loaded when an interval is drawn (scipy is a dependency)

    return float(t.ppf(0.5 + confidence / 2, df))


def standard_error(std: float, n: float) -> float:
    """std / sqrt(n); nan for one value or a missing spread."""
    return std / math.sqrt(n) if n and n > 1 and math.isfinite(std) else math.nan


def t_half_width(se: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half a two-sided t-interval around a mean of n values with standard error se (nan below two)."""
    if n < 2 or not math.isfinite(se):
        return math.nan
    return t_quantile(int(n) - 1, confidence) * se


def half_width(std: float, n: float) -> float:
    """Half the 95 % t-interval of a mean of n seeds with sample standard deviation std."""
    return t_half_width(standard_error(std, n), int(n) if n and math.isfinite(n) else 0)
