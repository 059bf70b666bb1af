"""Run configuration: YAML -> pydantic models, overrides, and the run's id.

Every run is described by one `RunConfig`. Unknown keys are errors, so a typo in a
YAML file fails before any compute is spent instead of silently using a default.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from prunebench.core import identity
from prunebench.core.errors import UserError, first_problem
from prunebench.core.phases import PHASES
from prunebench.core.sources import RUN_ID_PATTERN
from prunebench.core.storage import RunDir, Storage
from prunebench.core.strict import Strict

SEED_LIMIT = 2**32  # NumPy's seed range
MAX_EPOCHS, MAX_IMAGE_SIZE, MAX_BATCH, MAX_THREADS, MAX_WORKERS = 100_000, 4096, 65_536, 1024, 256
MAX_LR = 1e6  # larger learning rates or decays overflow float32 in the optimizer's step
MAX_PRETRAINED_BYTES = 4 << 30  # ResNet-50's weights are 100 MB; a larger "checkpoint" is not hashed
MAX_CONFIG_CHARS, MAX_CONFIG_DEPTH = 1 << 20, 64  # a config is a few KB, nested a few levels
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"  # a path component on every file system


class DenseStage(Strict):
    """The run whose final model this run starts from (a grid's shared dense stage)."""

    run_id: str = Field(pattern=NAME_PATTERN, description="the stage's run id, in the same experiment and storage: a plain name")
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
    from_architecture: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        exclude_if=lambda run_id: run_id is None,  # left out of dumps and the hash unless set
        description="train from scratch the final architecture (record `layers` widths) of this finished structured run of the "
        "same storage and experiment, re-initialised (Liu et al., ICLR 2019); with method dense",
    )

    @model_validator(mode="after")
    def _one_start(self) -> "ModelConfig":
        if self.pretrained is not None and self.dense_stage is not None:
            raise ValueError("give model.pretrained or model.dense_stage, not both")
        if self.from_architecture is not None and (self.pretrained is not None or self.dense_stage is not None):
            raise ValueError("model.from_architecture trains a fresh model; it takes no pretrained file or dense stage")
        if self.pretrained in (None, "torchvision") and self.pretrained_sha256 is not None:
            raise ValueError("pretrained_sha256: only a pretrained file has one (it is computed from the file)")
        if self.pretrained not in (None, "torchvision") and Path(self.pretrained).is_file():
            digest = pretrained_digest(Path(self.pretrained))
            if self.pretrained_sha256 not in (None, digest):  # identity is computed, never taken as written
                raise ValueError(f"pretrained_sha256: {self.pretrained_sha256} is not the hash of {self.pretrained} ({digest})")
            self.pretrained_sha256 = digest
        return self


def pretrained_digest(path: Path) -> str:
    """The file's SHA-256, once its size is known to be a checkpoint's; computed once per file
    version in this process (a grid validates every run that shares it)."""
    info = path.stat()
    if info.st_size > MAX_PRETRAINED_BYTES:
        raise ValueError(f"{path} is larger than a checkpoint can be ({MAX_PRETRAINED_BYTES >> 30} GiB)")
    return _file_digest(str(path.resolve()), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return identity.file_sha256(path)


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
    lr: float | None = Field(default=None, gt=0, le=MAX_LR, description="overrides optimizer.lr for this phase")
    schedule: ScheduleConfig | None = Field(
        default=None, exclude_if=lambda schedule: schedule is None, description="overrides the run's schedule for this phase"
    )


def expand_epochs_shorthand(phases: dict[str, Any]) -> dict[str, Any]:
    """A `phases` mapping with `prune: 5` written out as `prune: {epochs: 5}` (grids merge their
    layers' phases in this form)."""
    return {name: {"epochs": value} if isinstance(value, int) and not isinstance(value, bool) else value for name, value in phases.items()}


class PhasesConfig(Strict):
    """Epoch budget per phase. `dense` trains without the method, `prune` runs the method's
    pruning (penalties, schedules), `finetune` trains the hard-pruned model with its zeros fixed."""

    dense: PhaseConfig = PhaseConfig()
    prune: PhaseConfig = PhaseConfig()
    finetune: PhaseConfig = PhaseConfig()

    @model_validator(mode="before")
    @classmethod
    def _epochs_shorthand(cls, value: Any) -> Any:
        return expand_epochs_shorthand(value) if isinstance(value, dict) else value

    def total_epochs(self) -> int:
        return sum(getattr(self, name).epochs for name in PHASES)


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.1, gt=0, le=MAX_LR)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=5e-4, ge=0, le=MAX_LR)


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
    max_steps_per_epoch: int | None = Field(
        default=None, ge=1, exclude_if=lambda steps: steps is None,
        description="an epoch is at most this many optimizer steps, schedules counted over them (a quick check of a "
        "config, as the tests run every shipped one); part of the run's identity, since it changes what is computed",
    )
    amp: Literal["auto", "on", "off"] = Field(default="auto", description="mixed precision: auto = on when a GPU is used")
    threads: int | None = Field(
        default=None, ge=1, le=MAX_THREADS, description="torch CPU threads for this run; None keeps torch's default (Ray workers get their CPU share)"
    )
    latency: LatencyConfig = LatencyConfig()
    output_dir: str = Field(default="runs", description="storage path; the run directory is OUTPUT/EXPERIMENT/RUN_ID")
    wandb: Literal["auto", "offline", "online", "disabled"] = Field(
        default="auto", description="W&B mirror; auto: as WANDB_MODE says, else online with WANDB_API_KEY, else off (harness.tracking)"
    )
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
            if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]`: no config key is a list or mapping
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value", key_node.start_mark)
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """The YAML document in `text`, once its size and nesting are known to be within limits
    (the loader builds nested values recursively: 3,000 nested lists would overflow the stack)."""
    if len(text) > MAX_CONFIG_CHARS:
        raise yaml.error.MarkedYAMLError(problem=f"larger than {MAX_CONFIG_CHARS // 1024} KiB")
    depth = 0
    for event in yaml.parse(text, Loader=UniqueKeyLoader):  # events: no value is built yet
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                raise yaml.error.MarkedYAMLError(problem=f"nested deeper than {MAX_CONFIG_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
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
        raise UserError(f"--set {key}: value is not valid YAML ({getattr(exc, 'problem', None) or exc.__class__.__name__})") from None
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
    if path.stat().st_size > MAX_CONFIG_CHARS * 4:  # before reading: at most 4 bytes a character
        raise UserError(f"{path}: larger than a config file can be ({MAX_CONFIG_CHARS // 1024} KiB)")
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
    field, message = first_problem(exc)
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {field or '(top level)'}: {message}{more}"
