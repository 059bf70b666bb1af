"""Run configuration: YAML -> pydantic models, overrides, and the run's id.

Every run is described by one `RunConfig`. Unknown keys are errors, so a typo in a
YAML file fails before any compute is spent instead of silently using a default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from prunebench.core import identity
from prunebench.core.errors import UserError
from prunebench.core.storage import RunDir, Storage

PHASES = ("dense", "prune", "finetune")
SEED_LIMIT = 2**32  # NumPy's seed range
MAX_EPOCHS, MAX_IMAGE_SIZE, MAX_BATCH, MAX_THREADS, MAX_WORKERS = 100_000, 4096, 65_536, 1024, 256
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"  # a path component on every file system


def _number_kind(annotation: Any) -> str | None:
    """'an integer' or 'a number' when the field holds one (directly or in a union), else None."""
    kinds = {annotation, *getattr(annotation, "__args__", ())}
    return "a number" if float in kinds else "an integer" if int in kinds else None


class Strict(BaseModel):
    """Base for config sections: unknown keys are rejected, numbers are finite, and a boolean is
    not a number (YAML's `true` would otherwise train with seed 1)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, bool):  # first: this runs for every field of every run a grid plans
            return value
        field = cls.model_fields.get(info.field_name or "")
        kind = _number_kind(field.annotation) if field is not None else None
        if kind:
            raise ValueError(f"expected {kind}, got {str(value).lower()}")
        return value


class DenseStage(Strict):
    """The run whose final model this run starts from (a grid's shared dense stage)."""

    run_id: str = Field(min_length=1, description="the stage's run id, in the same experiment and storage")
    configuration: str = Field(min_length=1, description="the stage's seedless identity hash (what it computed)")


class ModelConfig(Strict):
    name: str = Field(description="model registry name, e.g. resnet20, resnet50, lenet_300_100")
    pretrained: str | None = Field(
        default=None,
        description="path to a dense checkpoint (state_dict), or 'torchvision' for torchvision's weights",
    )
    init: Literal["default", "normal_0.01"] = Field(
        default="default",
        exclude_if=lambda init: init == "default",  # left out of dumps and the hash unless set
        description="default: the model's own initialisation; normal_0.01: Conv/Linear weights ~ N(0, 0.01^2), biases 0 (DT paper, Sec. 4.2.1)",
    )
    pretrained_sha256: str | None = Field(
        default=None, description="content hash of the pretrained file, filled in when the config is read: the run's identity"
    )
    dense_stage: DenseStage | None = Field(
        default=None, description="start from this run's model (set by grids with shared_dense); its dense epochs count"
    )

    @model_validator(mode="after")
    def _one_start(self) -> "ModelConfig":
        if self.pretrained is not None and self.dense_stage is not None:
            raise ValueError("give model.pretrained or model.dense_stage, not both")
        if self.pretrained not in (None, "torchvision") and self.pretrained_sha256 is None and Path(self.pretrained).is_file():
            self.pretrained_sha256 = identity.file_sha256(self.pretrained)
        return self


class DataConfig(Strict):
    name: str = Field(description="dataset registry name: digits, mnist, cifar10, cifar100, imagenet")
    root: str | None = Field(default=None, description="directory holding the data set files")
    download: bool = Field(default=False, description="fetch the data set when it is absent")
    layout: Literal["image", "flat"] = Field(
        default="image",
        description="digits and mnist: images (digits 3x32x32, mnist 1x28x28) or flat vectors (64 / 784 features, LeNet-300-100 only)",
    )
    image_size: int = Field(default=32, gt=0, le=MAX_IMAGE_SIZE, description="input resolution the model sees (mnist: always its native 28)")
    batch_size: int = Field(
        default=128, gt=0, le=MAX_BATCH,
        description="the global batch of one optimizer step, as a paper prints it: a run's DDP workers share it (each takes batch_size / workers)",
    )
    eval_batch_size: int = Field(default=256, gt=0, le=MAX_BATCH)
    val_fraction: float = Field(default=0.1, gt=0, lt=1, description="share of training data held out for validation")
    num_workers: int = Field(default=0, ge=0, le=MAX_WORKERS)
    loader: Literal["torchvision", "dali"] = "torchvision"


class MethodConfig(Strict):
    name: str = Field(description="method registry name; `prunebench methods` lists them")
    hparams: dict[str, Any] = Field(default_factory=dict)


class ScheduleConfig(Strict):
    name: Literal["cosine", "step", "constant"] = "cosine"
    milestones: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.5, 0.75], description="step schedule: fractions of the phase's epochs, in (0, 1]"
    )
    gamma: float = Field(default=0.1, gt=0, le=1)
    warmup_epochs: int = Field(default=0, ge=0, le=MAX_EPOCHS)


class PhaseConfig(Strict):
    epochs: int = Field(default=0, ge=0, le=MAX_EPOCHS)
    lr: float | None = Field(default=None, gt=0, description="overrides optimizer.lr for this phase")
    schedule: ScheduleConfig | None = Field(
        default=None, exclude_if=lambda schedule: schedule is None, description="overrides the run's schedule for this phase"
    )


class PhasesConfig(Strict):
    """Epoch budget per phase. `dense` trains without the method, `prune` runs the method's
    pruning (penalties, schedules), `finetune` trains the hard-pruned model with its zeros fixed."""

    dense: PhaseConfig = PhaseConfig()
    prune: PhaseConfig = PhaseConfig()
    finetune: PhaseConfig = PhaseConfig()

    @model_validator(mode="before")
    @classmethod
    def _epochs_shorthand(cls, value: Any) -> Any:
        """Allow `prune: 5` as a shorthand for `prune: {epochs: 5}`."""
        if isinstance(value, dict):
            return {k: ({"epochs": v} if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in value.items()}
        return value

    def total_epochs(self) -> int:
        return sum(getattr(self, name).epochs for name in PHASES)


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=5e-4, ge=0)


class LatencyConfig(Strict):
    """The speed measurement at the end of a finished run (core.latency): how fast, not what the
    run computes, so none of it is part of the run's identity."""

    enabled: bool = Field(default=True, description="measure the final model against the dense architecture when the run finishes")
    batch_sizes: list[Annotated[int, Field(gt=0, le=MAX_BATCH, strict=True)]] = Field(
        default_factory=lambda: [1, 64], min_length=1, description="batch 1 (latency) and a throughput batch"
    )
    seconds: float = Field(default=1.0, gt=0, le=3600, description="time budget of the timed pairs, all batch sizes together (at least 3 pairs each)")

    @field_validator("batch_sizes")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("batch sizes must be distinct")
        return value


class Departure(Strict):
    """A way a paper protocol's config knowingly differs from the paper (the leaderboard shows it)."""

    key: str = Field(min_length=1, description="the config key that departs, e.g. data.val_fraction")
    reason: str = Field(min_length=1, description="what the paper does and why the config cannot")


class RunConfig(Strict):
    experiment: str = Field(default="default", min_length=1, description="a plain name: letters, digits, '.', '_', '-'; at most 100")
    model: ModelConfig
    data: DataConfig
    method: MethodConfig
    phases: PhasesConfig
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    seed: int = Field(default=0, ge=0, lt=SEED_LIMIT)
    target_compression: float | None = Field(
        default=None, ge=1, description="compression rate (1/density) the run aims for; epochs-to-sparsity counts to it"
    )
    amp: Literal["auto", "on", "off"] = Field(default="auto", description="mixed precision: auto = on when a GPU is used")
    threads: int | None = Field(
        default=None, ge=1, le=MAX_THREADS, description="torch CPU threads for this run; None keeps torch's default (Ray workers get their CPU share)"
    )
    latency: LatencyConfig = LatencyConfig()
    output_dir: str = Field(default="runs", description="storage path; the run directory is OUTPUT/EXPERIMENT/RUN_ID")
    wandb: Literal["auto", "offline", "online", "disabled"] = "disabled"
    departures: list[Departure] = Field(default_factory=list, description="a paper protocol's declared departures from its paper")

    @field_validator("experiment")
    @classmethod
    def _safe_experiment_name(cls, value: str) -> str:
        if "/" in value or value in (".", ".."):
            raise ValueError("must be a plain name without '/'")
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (at most 100, starting with a letter or digit)")
        return value

    @model_validator(mode="after")
    def _needs_training(self) -> "RunConfig":
        if self.phases.total_epochs() == 0 and self.model.pretrained is None and self.model.dense_stage is None:
            raise ValueError("phases: at least one phase needs epochs > 0 (or give model.pretrained)")
        return self

    def config_hash(self) -> str:
        """What the run computes, seed included (core.identity): never where its files are."""
        return identity.config_hash(self.model_dump(mode="json"))

    def configuration_hash(self) -> str:
        return identity.configuration_hash(self.model_dump(mode="json"))

    def run_id(self) -> str:
        return f"{self.method.name}-{self.model.name}-{self.data.name}-s{self.seed}-{self.config_hash()}"

    def run_files(self) -> RunDir:
        """The run directory, OUTPUT/EXPERIMENT/RUN_ID."""
        return Storage(self.output_dir).run(self.experiment, self.run_id())

    def phase_schedule(self, phase: str) -> ScheduleConfig:
        return getattr(self.phases, phase).schedule or self.schedule


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (PyYAML
    keeps the last one silently: `seed: 0` then `seed: 3` would train with seed 3)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=UniqueKeyLoader)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a','b','c'], value parsed as YAML)."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise UserError(f"--set {text!r}: empty key")
    try:
        value = read_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UserError(f"--set {key}: value is not valid YAML ({exc.__class__.__name__})") from None
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set` overrides to a raw (unvalidated) config mapping, creating sections as needed."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {'.'.join(path)}: '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return raw


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; every failure becomes a one-line UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        raw = read_yaml(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise UserError(f"{path}: malformed YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None
    if raw is None:
        raise UserError(f"{path}: empty config file, expected a YAML mapping")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a YAML mapping at top level, got {type(raw).__name__}")
    return raw


def describe_validation_error(source: str, exc: ValidationError) -> str:
    """One line naming the first offending field and what is expected."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {field}: {message}{more}"
