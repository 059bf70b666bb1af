"""Run configuration: YAML -> validated pydantic models, overrides, and the run's hash.

Every run is described by one `RunConfig`. Unknown keys are errors, so a typo in a
YAML file fails before any compute is spent instead of silently using a default.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import UserError

PHASES = ("dense", "prune", "finetune")


class Strict(BaseModel):
    """Base for config sections: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


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


class DataConfig(Strict):
    name: str = Field(description="dataset registry name: digits, mnist, cifar10, cifar100, imagenet")
    root: str | None = Field(default=None, description="directory holding the data set files")
    download: bool = Field(default=False, description="fetch the data set when it is absent")
    layout: Literal["image", "flat"] = Field(
        default="image",
        description="digits and mnist: images (digits 3x32x32, mnist 1x28x28) or flat vectors (64 / 784 features, LeNet-300-100 only)",
    )
    image_size: int = Field(default=32, gt=0, description="input resolution the model sees (mnist: always its native 28)")
    batch_size: int = Field(default=128, gt=0)
    eval_batch_size: int = Field(default=256, gt=0)
    val_fraction: float = Field(default=0.1, gt=0, lt=1, description="share of training data held out for validation")
    num_workers: int = Field(default=0, ge=0)
    loader: Literal["torchvision", "dali"] = "torchvision"


class MethodConfig(Strict):
    name: str = Field(description="method registry name; `prunebench methods` lists them")
    hparams: dict[str, Any] = Field(default_factory=dict)


class PhaseConfig(Strict):
    epochs: int = Field(default=0, ge=0)
    lr: float | None = Field(default=None, gt=0, description="overrides optimizer.lr for this phase")


class PhasesConfig(Strict):
    """Epoch budget per phase. `dense` trains without the method, `prune` runs the method's
    pruning (penalties, schedules), `finetune` trains the hard-pruned model with its zeros fixed."""

    dense: PhaseConfig = PhaseConfig()
    prune: PhaseConfig = PhaseConfig()
    finetune: PhaseConfig = PhaseConfig()
    dense_done: bool = Field(
        default=False,
        exclude_if=lambda done: not done,  # left out of dumps and the hash unless set
        description="model.pretrained already went through this dense phase (a grid's shared dense stage): "
        "its epochs count in the result but are not trained again",
    )

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


class ScheduleConfig(Strict):
    name: Literal["cosine", "step", "constant"] = "cosine"
    milestones: list[float] = Field(
        default_factory=lambda: [0.5, 0.75], description="step schedule: fractions of the phase's epochs"
    )
    gamma: float = Field(default=0.1, gt=0, le=1)
    warmup_epochs: int = Field(default=0, ge=0)


class RunConfig(Strict):
    experiment: str = Field(default="default", min_length=1)
    model: ModelConfig
    data: DataConfig
    method: MethodConfig
    phases: PhasesConfig
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    seed: int = Field(default=0, ge=0)
    target_compression: float | None = Field(
        default=None, ge=1, description="compression rate (1/density) the run aims for; epochs-to-sparsity counts to it"
    )
    amp: Literal["auto", "on", "off"] = Field(default="auto", description="mixed precision: auto = on when a GPU is used")
    threads: int | None = Field(
        default=None, ge=1, description="torch CPU threads for this run; None keeps torch's default (Ray workers get their CPU share)"
    )
    output_dir: str = Field(default="runs", description="storage path; the run directory is OUTPUT/EXPERIMENT/RUN_ID")
    wandb: Literal["auto", "offline", "online", "disabled"] = "disabled"

    @field_validator("experiment")
    @classmethod
    def _safe_experiment_name(cls, value: str) -> str:
        if "/" in value or value in (".", ".."):
            raise ValueError("must be a plain name without '/'")
        return value

    @model_validator(mode="after")
    def _needs_training(self) -> "RunConfig":
        if self.phases.total_epochs() == 0 and self.model.pretrained is None:
            raise ValueError("phases: at least one phase needs epochs > 0 (or give model.pretrained)")
        if self.phases.dense_done and self.model.pretrained is None:
            raise ValueError("phases.dense_done: needs model.pretrained (the model the dense phase produced)")
        return self

    def config_hash(self) -> str:
        """Stable hash of everything that changes the result (not where it is stored)."""
        content = self.model_dump(mode="json", exclude={"output_dir", "wandb", "threads"})
        content["data"].pop("num_workers", None)
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def run_id(self) -> str:
        return f"{self.method.name}-{self.model.name}-{self.data.name}-s{self.seed}-{self.config_hash()}"

    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.experiment / self.run_id()


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a','b','c'], value parsed as YAML)."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise UserError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
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
        raw = yaml.safe_load(path.read_text())
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
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {field}: {message}{more}"


def validate_run_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(describe_validation_error(source, exc)) from None
    check_registries(config, source)
    return config


def check_registries(config: RunConfig, source: str) -> None:
    """Names and hyper-parameters must exist in the registries; checked before any run starts."""
    import methods
    from harness import datasets, models

    if config.model.name not in models.available():
        raise UserError(f"{source}: model.name: unknown model {config.model.name!r}; expected one of {', '.join(models.available())}")
    if config.data.name not in datasets.available():
        raise UserError(f"{source}: data.name: unknown data set {config.data.name!r}; expected one of {', '.join(datasets.available())}")
    if config.method.name not in methods.available():
        raise UserError(f"{source}: method.name: unknown method {config.method.name!r}; expected one of {', '.join(methods.available())}")
    method = methods.create(config.method.name, **config.method.hparams)
    if method.needs_target_compression and config.target_compression is None:
        raise UserError(f"{source}: target_compression: method {config.method.name!r} prunes to a target; set one (e.g. 4.0)")
    for phase in PHASES:
        if getattr(config.phases, phase).epochs > 0 and phase not in method.phases:
            raise UserError(
                f"{source}: phases.{phase}: method {config.method.name!r} has no {phase} phase "
                f"(its phases: {', '.join(method.phases)})"
            )


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(load_yaml(path), overrides or [])
    return validate_run_config(raw, source=str(path))
