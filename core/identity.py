"""When two runs are the same: one rule for the run id's hash and for seed aggregation.

A run's identity is what it computed, never where its files are or how fast it ran: the
storage path, the experiment name, the data root, threads, loader workers, the evaluation batch
size, the speed measurement (`latency`: it times the final model, it does not change it),
tracking and a protocol's declared `departures` (prose about the config) are left out. A pretrained file counts by its content (its SHA-256), and a
shared dense stage by the stage's own configuration. The method's hyper-parameters count as
the method validated them (defaults filled in, normalised: `{}` and the written-out defaults
are one run); the harness puts those into the config before it is hashed. The rule works on
the JSON form of a run config, so the leaderboard applies it to the config a record carries.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# (section, key) pairs that say where files are, how fast a run goes, or where it is mirrored.
NOT_IDENTITY = (
    ((), "experiment"), ((), "output_dir"), ((), "wandb"), ((), "threads"), ((), "latency"), ((), "departures"),
    (("data",), "root"), (("data",), "download"), (("data",), "num_workers"), (("data",), "eval_batch_size"),
)  # fmt: skip
# The sections identity() removes keys from: copied, the rest of a config is shared.
_CHANGED = frozenset({path[0] for path, _ in NOT_IDENTITY if path} | {"model"})


def _section(config: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = config
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def identity(config: dict[str, Any], with_seed: bool = True) -> dict[str, Any]:
    """The parts of a run config (JSON form) that decide what the run computes. Only the
    sections it changes are copied (a deep copy was most of the time of planning a grid);
    `config` itself is left as it was."""
    content = {key: dict(value) if key in _CHANGED and isinstance(value, dict) else value for key, value in config.items()}
    for path, key in NOT_IDENTITY:
        section = _section(content, path)
        if section is not None:
            section.pop(key, None)
    model = _section(content, ("model",))
    if model is not None:
        stage = model.pop("dense_stage", None)
        digest = model.pop("pretrained_sha256", None)
        if isinstance(stage, dict):  # the stage's configuration, not its run id (which holds its location-free seed)
            model["pretrained"] = {"dense_stage": stage.get("configuration")}
        elif digest:
            model["pretrained"] = {"sha256": digest}
    if not with_seed:
        content.pop("seed", None)
    return content


def digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def config_hash(config: dict[str, Any]) -> str:
    """The hash in the run id: everything that changes the result, seed included."""
    return digest(identity(config))


def configuration_hash(config: dict[str, Any]) -> str:
    """The same without the seed: runs that share it are seeds of one configuration."""
    return digest(identity(config, with_seed=False))


def with_hparams(config: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The run config (JSON form) with these hyper-parameters for its method: a record's config
    with the validated ones its `hparams` field holds."""
    method = config.get("method")
    return {**config, "method": {**method, "hparams": hparams}} if isinstance(method, dict) else config


def renamed(record: dict[str, Any]) -> str | None:
    """The config hash a record's run has under this rule when the record was named otherwise:
    records written before the rule hashed the hyper-parameters as written. None when the
    record's name stands (or it carries no config to tell)."""
    config, hparams = record.get("config"), record.get("hparams")
    if not isinstance(config, dict) or not isinstance(hparams, dict):
        return None
    now = config_hash(with_hparams(config, hparams))
    return now if now != record.get("config_hash") else None


def file_sha256(path: str) -> str:
    """Content hash of a file (a pretrained checkpoint), read in chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()
