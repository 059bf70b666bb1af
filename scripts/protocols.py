"""`make protocols`: write leaderboard/protocols.json, the seedless identity of every paper row's
protocol config (the `protocol` column of leaderboard/reported.csv), for the verdicts.

The leaderboard needs only the ground floor, so it cannot validate a config (fill its defaults)
itself; this script does, once, and the leaderboard compares each run's recorded configuration
with the file. A test regenerates it and fails when a config or a default changed without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from prunebench.core import identity
from prunebench.harness.validation import load_run_config
from prunebench.leaderboard.reported import PROTOCOLS_JSON, protocols_named

REPO = Path(__file__).resolve().parent.parent


def protocol_identity(protocol: str) -> dict[str, Any]:
    """'PATH [KEY=VALUE ...]' -> its configuration hash, seedless identity and declared departures."""
    path, *overrides = protocol.split()
    config = load_run_config(REPO / path, overrides).model_dump(mode="json")
    return {
        "configuration": identity.configuration_hash(config),
        "identity": identity.identity(config, with_seed=False),
        "departures": config["departures"],
    }


def protocols_text() -> str:
    return json.dumps({protocol: protocol_identity(protocol) for protocol in protocols_named()}, indent=1, sort_keys=True) + "\n"


def main() -> int:
    PROTOCOLS_JSON.write_text(protocols_text(), encoding="utf-8")
    print(f"wrote {PROTOCOLS_JSON}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
