"""Grid files: a benchmark as methods x hyper-parameters x models x data sets x seeds.

A run's config is built from layers, each merged onto the one before (mappings key by key):

1. `base`: settings every run shares;
2. `method_config` with {method} filled in (e.g. configs/smoke/{method}.yaml): each method's
   own run config, so one file defines a method's settings for both `prunebench run` and grids;
3. the method's entry in `axes.method`: fixed overrides (phases, optimizer, ...) and one value
   of each hyper-parameter (a list under `hparams` lists alternatives: cartesian product);
4. the `model`, `data` and `seed` axes, then `experiment` and the storage path.

Every run is validated here, so a bad grid fails before anything is scheduled. With
`shared_dense`, the dense model is trained once per (model, data set, seed) by a `dense` run, and
every pruning run with a dense phase starts from its final model instead of training its own:
the run names the stage by its run id, and the storage finds the stage's model at run time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import methods
from core.errors import UserError
from core.storage import storage_root
from harness.config import RunConfig, Strict, apply_overrides, describe_validation_error, load_yaml
from harness.validation import validate_run_config

# Run-config sections a method's entry in `axes.method` may override (method and identity are the grid's).
OVERRIDABLE = frozenset(RunConfig.model_fields) - {"method", "experiment", "output_dir"}


class MethodAxis(BaseModel):
    """One method in `axes.method`: hyper-parameter alternatives plus fixed run-config overrides."""

    model_config = ConfigDict(extra="allow")
    hparams: dict[str, Any] = Field(default_factory=dict, description="name: [alternatives] (a single value is one)")

    @model_validator(mode="after")
    def _overrides_are_run_config_sections(self) -> "MethodAxis":
        for key in self.model_extra or {}:
            if key not in OVERRIDABLE:
                raise ValueError(f"{key!r} is not hparams or a run-config section ({', '.join(sorted(OVERRIDABLE))})")
        return self

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def hparam_choices(self) -> list[dict[str, Any]]:
        """The cartesian product of the alternatives, one mapping per combination."""
        names = list(self.hparams)
        values = [value if isinstance(value, list) else [value] for value in self.hparams.values()]
        return [dict(zip(names, combination)) for combination in itertools.product(*values)]


class Axes(Strict):
    method: list[str] | dict[str, MethodAxis | None] = Field(description="method names, or name: MethodAxis")
    seed: list[int] | None = Field(default=None, min_length=1)
    model: list[str | dict[str, Any]] | None = Field(default=None, min_length=1, description="names or model sections")
    data: list[str | dict[str, Any]] | None = Field(default=None, min_length=1, description="names or data sections")

    @field_validator("method")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if not value:
            raise ValueError("needs at least one method")
        return value

    def methods(self) -> dict[str, MethodAxis]:
        entries = dict.fromkeys(self.method) if isinstance(self.method, list) else self.method
        return {name: axis or MethodAxis() for name, axis in entries.items()}


class ClusterSpec(Strict):
    workers_per_run: int = Field(default=1, ge=1, description="DDP workers (processes) per run")
    cpus_per_worker: float = Field(default=1.0, gt=0, description="fractions allowed, e.g. 0.5")
    gpus_per_worker: float = Field(default=0.0, ge=0, description="0 trains on CPUs with gloo, > 0 on GPUs with NCCL")
    max_concurrent_runs: int = Field(default=1, ge=1)
    max_failures: int = Field(default=3, ge=0, description="restarts of a run after a worker dies")


class Grid(Strict):
    experiment: str = Field(min_length=1)
    storage_path: str = Field(default="runs", min_length=1, description="local directory or URI (s3://...)")
    base: dict[str, Any] = Field(default_factory=dict, description="run-config settings every run shares")
    method_config: str | None = Field(default=None, description="per-method run config, e.g. configs/smoke/{method}.yaml")
    shared_dense: bool = Field(default=False, description="train the dense phase once per (model, data, seed)")
    axes: Axes
    cluster: ClusterSpec = ClusterSpec()

    @field_validator("method_config")
    @classmethod
    def _has_placeholder(cls, value: str | None) -> str | None:
        if value is not None and "{method}" not in value:
            raise ValueError("must contain {method}, e.g. configs/smoke/{method}.yaml")
        return value


@dataclass(frozen=True)
class PlannedRun:
    """A validated run; `stage` is the run id of the dense stage it starts from, if any."""

    config: RunConfig
    stage: str | None = None

    def describe(self) -> str:
        config = self.config
        hparams = " ".join(f"{key}={value}" for key, value in config.method.hparams.items()) or "-"
        start = f"  (from dense stage {self.stage})" if self.stage else ""
        return f"{config.method.name:<7} {hparams}  {config.model.name}/{config.data.name} seed {config.seed}  {config.run_id()}{start}"


def load_grid(path: str | Path, overrides: list[str] | None = None) -> Grid:
    raw = apply_overrides(load_yaml(path), overrides or [])
    try:
        return Grid.model_validate(raw)
    except ValidationError as exc:
        raise UserError(describe_validation_error(str(path), exc)) from None


def merge(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """`upper` over `lower`: mappings merge key by key, anything else is replaced."""
    merged = dict(lower)
    for key, value in upper.items():
        below = merged.get(key)
        merged[key] = merge(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _normalize(layer: dict[str, Any], method: str) -> dict[str, Any]:
    """Make layers merge predictably: `prune: 4` becomes `prune: {epochs: 4}`, and a layer's
    method section is dropped when it names another method (its hyper-parameters do not apply)."""
    layer = dict(layer)
    if isinstance(layer.get("phases"), dict):
        layer["phases"] = {
            name: {"epochs": value} if isinstance(value, int) and not isinstance(value, bool) else value
            for name, value in layer["phases"].items()
        }
    section = layer.get("method")
    if isinstance(section, dict) and section.get("name", method) != method:
        del layer["method"]
    return layer


class GridExpansion:
    """Builds and validates every run of a grid."""

    def __init__(self, grid: Grid, source: str) -> None:
        self.grid, self.source = grid, source
        self.output_dir = storage_root(grid.storage_path)
        self.axes = grid.axes.methods()
        self.method_files: dict[str, dict[str, Any]] = {}

    def runs(self) -> list[PlannedRun]:
        """Stages come before the runs that start from them; identical runs appear once."""
        planned: dict[str, PlannedRun] = {}
        for method, axis in self.axes.items():
            self._check_method(method, axis)
            for hparams in axis.hparam_choices():
                for point in self._points():
                    config = self._config(method, axis, hparams, point)
                    stage = self._stage(config, point)
                    if stage is not None:
                        planned.setdefault(stage.run_id(), PlannedRun(stage))
                        config = self._start_from(config, stage)
                    planned.setdefault(config.run_id(), PlannedRun(config, stage.run_id() if stage else None))
        return list(planned.values())

    def _check_method(self, method: str, axis: MethodAxis) -> None:
        if method not in methods.available():
            raise UserError(f"{self.source}: axes.method: unknown method {method!r}; expected one of {', '.join(methods.available())}")
        known = methods.get(method).Hparams.model_fields
        for name in axis.hparams:
            if name not in known:
                raise UserError(f"{self.source}: axes.method.{method}.hparams.{name}: unknown hyper-parameter of {method!r} "
                                f"(known: {', '.join(known) or 'none'})")  # fmt: skip

    def _points(self) -> list[dict[str, Any]]:
        """One layer per (model, data, seed) combination of the axes that are given."""
        axes = self.grid.axes
        models = [{"model": item if isinstance(item, dict) else {"name": item}} for item in axes.model or []] or [{}]
        datas = [{"data": item if isinstance(item, dict) else {"name": item}} for item in axes.data or []] or [{}]
        seeds = [{"seed": seed} for seed in axes.seed or []] or [{}]
        return [merge(merge(model, data), seed) for model, data, seed in itertools.product(models, datas, seeds)]

    def _method_file(self, method: str) -> dict[str, Any]:
        if self.grid.method_config is None:
            return {}
        if method not in self.method_files:
            self.method_files[method] = load_yaml(self.grid.method_config.format(method=method))
        return self.method_files[method]

    def _config(self, method: str, axis: MethodAxis, hparams: dict[str, Any], point: dict[str, Any]) -> RunConfig:
        layers = [
            self.grid.base,
            self._method_file(method),
            axis.overrides(),
            {"method": {"name": method, "hparams": hparams}},
            point,
            {"experiment": self.grid.experiment, "output_dir": self.output_dir},
        ]
        raw: dict[str, Any] = {}
        for layer in layers:
            raw = merge(raw, _normalize(layer, method))
        label = " ".join([method, *(f"{key}={value}" for key, value in hparams.items())])
        return validate_run_config(raw, source=f"{self.source} (run {label})")

    def _stage(self, config: RunConfig, point: dict[str, Any]) -> RunConfig | None:
        """The shared dense run this run starts from: the grid's `dense` run at the same point."""
        if not self.grid.shared_dense or config.method.name == "dense" or config.phases.dense.epochs == 0:
            return None
        return self._config("dense", self.axes.get("dense", MethodAxis()), {}, point)

    def _start_from(self, config: RunConfig, stage: RunConfig) -> RunConfig:
        """The run with its dense phase replaced by the stage's: its epochs still count."""
        raw = config.model_dump(mode="json")
        raw["model"].update(pretrained=None, pretrained_sha256=None,
                            dense_stage={"run_id": stage.run_id(), "configuration": stage.configuration_hash()})  # fmt: skip
        raw["phases"]["dense"] = stage.phases.dense.model_dump(mode="json")
        return validate_run_config(raw, source=f"{self.source} (run {config.method.name} from the dense stage)")


def expand_grid(grid: Grid, source: str) -> list[PlannedRun]:
    return GridExpansion(grid, source).runs()
