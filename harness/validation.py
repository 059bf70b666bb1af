"""A run config read and checked against the registries: everything `prunebench run` and grids
refuse before any compute is spent. Above config, datasets, models and methods, which it asks.

The method's hyper-parameters are replaced here by the ones it validated (defaults filled in,
normalised): the config that leaves this module is what the run computes, so `{}` and the
written-out defaults name one run (core.identity hashes the config as it is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.phases import PHASES
from prunebench.harness import datasets, models
from prunebench.harness.config import RunConfig, apply_overrides, describe_validation_error, load_yaml


def validate_run_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(describe_validation_error(source, exc)) from None
    check_registries(config, source)
    return config


def check_registries(config: RunConfig, source: str) -> None:
    """Names and hyper-parameters must exist in the registries; checked before any run starts.
    Fills in the method's validated hyper-parameters (`config.method.hparams`)."""
    try:  # name the file (and the grid's run) the names and hyper-parameters came from
        models.get(config.model.name)
        datasets.get(config.data.name)
        method = methods.get(config.method.name)
        hparams = methods.validate_hparams(config.method.name, config.method.hparams)
        config.method.hparams = hparams.model_dump(mode="json")
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    if method.needs_target_compression and config.target_compression is None:
        raise UserError(f"{source}: target_compression: method {config.method.name!r} prunes to a target; set one (e.g. 4.0)")
    for phase in PHASES:
        if getattr(config.phases, phase).epochs > 0 and phase not in method.phases:
            raise UserError(
                f"{source}: phases.{phase}: method {config.method.name!r} has no {phase} phase "
                f"(its phases: {', '.join(method.phases)})"
            )
    if config.model.from_architecture is not None and config.method.name != "dense":
        raise UserError(f"{source}: model.from_architecture: trains the architecture as it is; use method dense, "
                        f"not {config.method.name!r}")  # fmt: skip
    epochs = {phase: getattr(config.phases, phase).epochs for phase in PHASES}
    try:
        method.check_protocol(hparams, epochs, config.target_compression, config.model.dense_stage is not None)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(load_yaml(path), overrides or [])
    return validate_run_config(raw, source=str(path))
