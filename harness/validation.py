"""A run config read and checked against the registries: everything `prunebench run` and grids
refuse before any compute is spent. Above config, datasets, models and methods, which it asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.harness import datasets, models
from prunebench.harness.config import PHASES, RunConfig, apply_overrides, describe_validation_error, load_yaml


def validate_run_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(describe_validation_error(source, exc)) from None
    check_registries(config, source)
    return config


def check_registries(config: RunConfig, source: str) -> None:
    """Names and hyper-parameters must exist in the registries; checked before any run starts."""
    if config.model.name not in models.available():
        raise UserError(f"{source}: model.name: unknown model {config.model.name!r}; expected one of {', '.join(models.available())}")
    if config.data.name not in datasets.available():
        raise UserError(f"{source}: data.name: unknown data set {config.data.name!r}; expected one of {', '.join(datasets.available())}")
    if config.method.name not in methods.available():
        raise UserError(f"{source}: method.name: unknown method {config.method.name!r}; expected one of {', '.join(methods.available())}")
    try:
        method = methods.create(config.method.name, **config.method.hparams)
    except UserError as exc:  # name the file (and the grid's run) the hyper-parameters came from
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
        method.check_protocol(epochs, config.target_compression, config.model.dense_stage is not None)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(load_yaml(path), overrides or [])
    return validate_run_config(raw, source=str(path))
