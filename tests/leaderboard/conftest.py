"""Every leaderboard test sees one terminal width, wherever it runs: pytest-xdist's workers
report 80 columns, a plain run none (the view's fallback). A test about fitting sets its own
COLUMNS."""

from __future__ import annotations

import pytest

from prunebench.leaderboard.views.terminal import FALLBACK_WIDTH


@pytest.fixture(autouse=True)
def terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(FALLBACK_WIDTH))
