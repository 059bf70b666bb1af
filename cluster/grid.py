"""Grid files: a benchmark as methods x hyper-parameters x models x data sets x seeds.

A run's config is built from layers, each merged onto the one before (mappings key by key):

1. `base`: settings every run shares;
2. `method_config` with {method} (and {model}, the model axis's name) filled in (e.g.
   configs/smoke/{method}.yaml): each method's own run config, so one file defines a method's
   settings for both `prunebench run` and grids;
3. the method's entry in `axes.method`: fixed overrides (phases, optimizer, ...) and one value
   of each hyper-parameter (a list under `hparams` lists alternatives: cartesian product; so
   does a list under `target_compression`, e.g. a table's rows at 1.33x, 2x and 3x);
4. the `model`, `data` and `seed` axes, then `experiment` and the storage path;
5. with `budget` (the fair protocol), every phase's epochs: the budget split over the method's
   phases by the shares it declares (`PruningMethod.budget_split`), so every run trains the same
   number of epochs, its dense stage's included.

Every run is validated here, so a bad grid fails before anything is scheduled; the number of
runs is known from the axes alone (`GridExpansion.count`), before any is built. With
`shared_dense`, the dense model is trained once per (model, data set, seed) by a `dense` run, and
every pruning run with a dense phase starts from its final model instead of training its own:
the run names the stage by its run id, and the storage finds the stage's model at run time.
"""

from __future__ import annotations

import itertools
import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.phases import PHASES
from prunebench.core.storage import storage_root
from prunebench.core.strict import Strict
from prunebench.core.text import printable
from prunebench.harness.config import MAX_EPOCHS, RunConfig, apply_overrides, describe_validation_error, expand_epochs_shorthand, load_yaml
from prunebench.harness.validation import validate_run_config

# What `method_config` may name: the method, and the model axis's model name.
TEMPLATE_FIELDS = ("{method}", "{model}")
# Run-config sections a method's entry in `axes.method` may override (method and identity are the grid's).
OVERRIDABLE = frozenset(RunConfig.model_fields) - {"method", "experiment", "output_dir"}
# Ray counts resources in units of 1/10000 and refuses finer shares.
RESOURCE_UNIT = 0.0001
# Beyond any cluster: a number this large is a typo, and Ray would wait forever for it.
MAX_WORKERS_PER_RUN, MAX_CPUS_PER_WORKER, MAX_GPUS_PER_WORKER = 1024, 1024, 16
MAX_CONCURRENT_RUNS, MAX_FAILURES = 10_000, 100

# Strict: a YAML `true` is not the number 1, nor 2.0 the integer 2; no number is infinite or NaN.
Integer = Annotated[int, Field(strict=True)]
Resource = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class MethodAxis(BaseModel):
    """One method in `axes.method`: hyper-parameter and target alternatives plus fixed run-config overrides."""

    model_config = ConfigDict(extra="allow")
    hparams: dict[str, Any] = Field(default_factory=dict, description="name: [alternatives] (a single value is one)")
    target_compression: Any = Field(default=None, description="a target, or [alternatives]; checked in each run's config")

    @model_validator(mode="after")
    def _overrides_are_run_config_sections(self) -> "MethodAxis":
        for key in self.model_extra or {}:
            if key not in OVERRIDABLE:
                raise ValueError(f"{key!r} is not hparams or a run-config section ({', '.join(sorted(OVERRIDABLE))})")
        return self

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def alternatives(self) -> dict[str, list[Any]]:
        """Each hyper-parameter's alternatives: a list lists them, any other value is the one."""
        return {name: value if isinstance(value, list) else [value] for name, value in self.hparams.items()}

    def hparam_choices(self) -> list[dict[str, Any]]:
        """The cartesian product of the alternatives, one mapping per combination."""
        alternatives = self.alternatives()
        return [dict(zip(alternatives, combination)) for combination in itertools.product(*alternatives.values())]

    def targets(self) -> list[dict[str, Any]]:
        """One override layer per target alternative ({} when the entry sets none)."""
        if self.target_compression is None:
            return [{}]
        values = self.target_compression if isinstance(self.target_compression, list) else [self.target_compression]
        return [{"target_compression": value} for value in values]

    def choice_count(self) -> int:
        """len(hparam_choices()) x len(targets()), without building them."""
        return math.prod(len(values) for values in self.alternatives().values()) * len(self.targets())


class Axes(Strict):
    method: dict[str, MethodAxis | None] = Field(description="method names, or name: MethodAxis")
    seed: list[Integer] | None = Field(default=None, min_length=1)
    model: list[str | dict[str, Any]] | None = Field(default=None, min_length=1, description="names or model sections")
    data: list[str | dict[str, Any]] | None = Field(default=None, min_length=1, description="names or data sections")

    @field_validator("method", mode="before")
    @classmethod
    def _names_are_entries(cls, value: Any) -> Any:
        """[a, b] means {a: null, b: null}: one schema, so that an error names its method."""
        if not value:
            raise ValueError("needs at least one method")
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f"expected method names, got a {type(item).__name__}")  # noqa: TRY004 - pydantic reports ValueError only
            return dict.fromkeys(value)
        return value

    def methods(self) -> dict[str, MethodAxis]:
        return {name: axis or MethodAxis() for name, axis in self.method.items()}


class ClusterSpec(Strict):
    workers_per_run: Integer = Field(default=1, ge=1, le=MAX_WORKERS_PER_RUN, description="DDP workers (processes) per run")
    cpus_per_worker: Resource = Field(default=1.0, ge=RESOURCE_UNIT, le=MAX_CPUS_PER_WORKER, description="fractions allowed, e.g. 0.5")
    gpus_per_worker: Resource = Field(default=0.0, ge=0, le=MAX_GPUS_PER_WORKER, description="0 trains on CPUs with gloo, > 0 on GPUs with NCCL")
    max_concurrent_runs: Integer = Field(default=1, ge=1, le=MAX_CONCURRENT_RUNS)
    max_failures: Integer = Field(default=3, ge=0, le=MAX_FAILURES, description="restarts of a run after a worker dies")

    @field_validator("gpus_per_worker")
    @classmethod
    def _a_share_ray_counts(cls, value: float) -> float:
        if 0 < value < RESOURCE_UNIT:
            raise ValueError(f"must be 0 or at least {RESOURCE_UNIT:g} (the smallest share of a GPU Ray counts)")
        return value


def _placeholders(template: str) -> list[str]:
    """The replacement fields of a str.format template as written ('{method}', '{0}', '{x!r}')."""
    return [
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _, name, spec, conversion in string.Formatter().parse(template)
        if name is not None
    ]


class Grid(Strict):
    experiment: str = Field(min_length=1)
    storage_path: str = Field(default="runs", min_length=1, description="local directory or URI (s3://...)")
    base: dict[str, Any] = Field(default_factory=dict, description="run-config settings every run shares")
    method_config: str | None = Field(default=None, description="per-method run config, e.g. configs/smoke/{method}.yaml")
    shared_dense: bool = Field(default=False, strict=True, description="train the dense phase once per (model, data, seed)")
    budget: Integer | None = Field(
        default=None, ge=1, le=MAX_EPOCHS, description="fair protocol: total training epochs of every run, split by each method's budget_split"
    )
    axes: Axes
    cluster: ClusterSpec = ClusterSpec()

    @field_validator("experiment", "storage_path")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        """They become directory names and are printed: a NUL breaks the path, an ESC the terminal."""
        if printable(value) != value:
            raise ValueError(f"must not contain control characters (got {printable(value)!r})")
        return value

    @field_validator("method_config")
    @classmethod
    def _method_is_the_only_placeholder(cls, value: str | None) -> str | None:
        """The template is filled with str.format(method=..., model=...): any other field would fail there."""
        if value is None:
            return value
        try:
            fields = _placeholders(value)
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc}); e.g. configs/smoke/{{method}}.yaml") from None
        others = [field for field in fields if field not in TEMPLATE_FIELDS]
        if others:
            raise ValueError(f"{{method}} and {{model}} are the only placeholders, got {others[0]}")
        if "{method}" not in fields:
            raise ValueError("must contain {method}, e.g. configs/smoke/{method}.yaml")
        return value


@dataclass(frozen=True)
class PlannedRun:
    """A validated run; `stage` is the run id of the dense stage it starts from, if any, and
    `swept` the hyper-parameters its method axis chose."""

    config: RunConfig
    stage: str | None = None
    swept: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line; of the (validated) hyper-parameters, those swept or not at their default."""
        config = self.config
        defaults = methods.get(config.method.name).Hparams().model_dump(mode="json")
        shown = {key: value for key, value in config.method.hparams.items() if key in self.swept or defaults.get(key) != value}
        hparams = " ".join(f"{key}={value}" for key, value in shown.items()) or "-"
        start = f"  (from dense stage {self.stage})" if self.stage else ""
        target = f" target {config.target_compression:g}x" if config.target_compression is not None else ""
        return (f"{config.method.name:<7} {hparams}  {config.model.name}/{config.data.name}{target} seed {config.seed} "
                f"{config.phases.total_epochs()} epochs  {config.run_id()}{start}")  # fmt: skip


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
        layer["phases"] = expand_epochs_shorthand(layer["phases"])
    section = layer.get("method")
    if isinstance(section, dict) and section.get("name", method) != method:
        del layer["method"]
    return layer


class GridExpansion:
    """Builds and validates every run of a grid."""

    def __init__(self, grid: Grid, source: str) -> None:
        """Checks the method axes (names, hyper-parameters, alternatives); builds no run yet."""
        self.grid, self.source = grid, source
        self.output_dir = storage_root(grid.storage_path)
        self.axes = grid.axes.methods()
        self.method_files: dict[str, dict[str, Any]] = {}
        for method, axis in self.axes.items():
            self._check_method(method, axis)
        if "{model}" in (grid.method_config or "") and not all(isinstance(item, str) for item in grid.axes.model or [{}]):
            raise UserError(f"{source}: method_config: {{model}} needs axes.model, a list of model names")

    def count(self) -> int:
        """How many runs the axes ask for (identical ones counted apart, shared dense stages
        not counted), from the axes' lengths alone: a grid too large is refused at once."""
        points = math.prod(len(layers) for layers in self._axis_layers())
        return points * sum(axis.choice_count() for axis in self.axes.values())

    def runs(self) -> list[PlannedRun]:
        """Stages come before the runs that start from them; identical runs appear once."""
        planned: dict[str, PlannedRun] = {}
        for method, axis in self.axes.items():
            for hparams, target in itertools.product(axis.hparam_choices(), axis.targets()):
                for point in self._points():
                    config = self._config(method, axis, hparams, merge(point, target))
                    stage = self._stage(config, point)
                    if stage is not None:
                        planned.setdefault(stage.run_id(), PlannedRun(stage))
                        config = self._start_from(config, stage)
                    planned.setdefault(config.run_id(), PlannedRun(config, stage.run_id() if stage else None, tuple(hparams)))
        return list(planned.values())

    def _check_method(self, method: str, axis: MethodAxis) -> None:
        if method not in methods.available():
            raise UserError(f"{self.source}: axes.method: unknown method {method!r}; expected one of {', '.join(methods.available())}")
        known = methods.get(method).Hparams.model_fields
        for name, values in axis.alternatives().items():
            if name not in known:
                raise UserError(f"{self.source}: axes.method.{method}.hparams.{name}: unknown hyper-parameter of {method!r} "
                                f"(known: {', '.join(known) or 'none'})")  # fmt: skip
            if not values:  # the product would silently drop the method
                raise UserError(f"{self.source}: axes.method.{method}.hparams.{name}: an empty list of alternatives; "
                                "give at least one value (an empty list as the one value is [[]])")  # fmt: skip
        if axis.target_compression == []:
            raise UserError(f"{self.source}: axes.method.{method}.target_compression: an empty list of alternatives; give at least one target")

    def _axis_layers(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The model, data and seed axes as layers; an axis not given is one empty layer."""
        axes = self.grid.axes
        models = [{"model": item if isinstance(item, dict) else {"name": item}} for item in axes.model or []] or [{}]
        datas = [{"data": item if isinstance(item, dict) else {"name": item}} for item in axes.data or []] or [{}]
        seeds = [{"seed": seed} for seed in axes.seed or []] or [{}]
        return models, datas, seeds

    def _points(self) -> list[dict[str, Any]]:
        """One layer per (model, data, seed) combination of the axes that are given."""
        return [merge(merge(model, data), seed) for model, data, seed in itertools.product(*self._axis_layers())]

    def _method_file(self, method: str, point: dict[str, Any]) -> dict[str, Any]:
        if self.grid.method_config is None:
            return {}
        path = self.grid.method_config.format(method=method, model=point.get("model", {}).get("name", ""))
        if path not in self.method_files:
            self.method_files[path] = load_yaml(path)
        return self.method_files[path]

    def _budget_phases(self, method: str, layer: dict[str, Any], dense_epochs: int | None) -> dict[str, Any]:
        """The phases section under `budget`: each phase's epochs from the method's split (a
        dense stage: `dense_epochs`, the dense phase of the runs that start from it), each
        phase's lr and schedule as the layers set them."""
        if dense_epochs is not None:
            split = {"dense": dense_epochs}
        elif not methods.get(method).budget_split:
            raise UserError(f"{self.source}: budget: method {method!r} declares no budget_split")
        else:
            try:
                split = methods.get(method).split_budget(self.grid.budget)
            except UserError as exc:
                raise UserError(f"{self.source}: {exc}") from None
        given = layer.get("phases") if isinstance(layer.get("phases"), dict) else {}
        return {phase: {**(given.get(phase) or {}), "epochs": split.get(phase, 0)} for phase in PHASES}

    def _config(self, method: str, axis: MethodAxis, hparams: dict[str, Any], point: dict[str, Any],
                dense_epochs: int | None = None) -> RunConfig:  # fmt: skip
        layers = [
            self.grid.base,
            self._method_file(method, point),
            axis.overrides(),
            {"method": {"name": method, "hparams": hparams}},
            point,
            {"experiment": self.grid.experiment, "output_dir": self.output_dir},
        ]
        raw: dict[str, Any] = {}
        for layer in layers:
            raw = merge(raw, _normalize(layer, method))
        if self.grid.budget is not None:
            raw["phases"] = self._budget_phases(method, raw, dense_epochs)
        chosen = {**hparams, **({"target_compression": point["target_compression"]} if "target_compression" in point else {})}
        label = " ".join([method, *(f"{key}={value}" for key, value in chosen.items())])
        return validate_run_config(raw, source=f"{self.source} (run {label})")

    def _stage(self, config: RunConfig, point: dict[str, Any]) -> RunConfig | None:
        """The shared dense run this run starts from: the grid's `dense` run at the same point."""
        if not self.grid.shared_dense or config.method.name == "dense" or config.phases.dense.epochs == 0:
            return None
        if not methods.create(config.method.name, **config.method.hparams).shares_dense_stage:
            return None
        dense_epochs = config.phases.dense.epochs if self.grid.budget is not None else None
        return self._config("dense", self.axes.get("dense", MethodAxis()), {}, point, dense_epochs)

    def _start_from(self, config: RunConfig, stage: RunConfig) -> RunConfig:
        """The run with its dense phase replaced by the stage's: its epochs still count."""
        raw = config.model_dump(mode="json")
        raw["model"].update(pretrained=None, pretrained_sha256=None,
                            dense_stage={"run_id": stage.run_id(), "configuration": stage.configuration_hash()})  # fmt: skip
        raw["phases"]["dense"] = stage.phases.dense.model_dump(mode="json")
        return validate_run_config(raw, source=f"{self.source} (run {config.method.name} from the dense stage)")


def expand_grid(grid: Grid, source: str) -> list[PlannedRun]:
    return GridExpansion(grid, source).runs()
