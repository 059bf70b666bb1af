"""The pruning-method contract. The training loop only ever calls these hooks.

A method is a plain object created from validated hyper-parameters. It may hold state
(schedules, the model it attached to); `state_dict` / `load_state_dict` carry that state
through checkpoints so a restarted run continues where it stopped.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.core.phases import PHASES
from prunebench.core.record import Histogram
from prunebench.core.strict import Strict

if TYPE_CHECKING:
    from prunebench.core.sources import SourceRuns


def parametrized_layers(model: nn.Module) -> list[tuple[torch.Tensor, nn.Module]]:
    """(raw weight, its first weight parametrization) of every reparametrised Conv/Linear layer:
    what threshold methods read their thresholds and penalties from."""
    return [
        (module.parametrizations.weight.original, module.parametrizations.weight[0])
        for _, module in prunable_modules(model)
        if parametrize.is_parametrized(module, "weight")
    ]


def remove_weight_parametrization(module: nn.Module, leave_parametrized: bool) -> None:
    """torch's remove_parametrizations for this module alone. torch deletes `weight` from the
    module's generated Parametrized* class, which every deepcopy of the model shares; giving the
    module a class of its own first leaves the copies (and the original) intact."""
    shared = type(module)
    module.__class__ = type(shared.__name__, shared.__bases__, dict(shared.__dict__))
    parametrize.remove_parametrizations(module, "weight", leave_parametrized=leave_parametrized)


class Hparams(Strict):
    """Base of every method's hyper-parameters: the config's rules (no unknown names, finite
    numbers, no booleans for numbers); defaults are documented."""


class PruningMethod:
    """Base class. Subclasses set `name`, `summary`, `phases`, `granularity`, `budget_split` and `Hparams`.

    phases: which of core.phases.PHASES the method uses (default: all three). `dense` trains
    the plain model, `prune` runs with the method attached (penalty, schedules), then
    `finalize` hard-prunes, and `finetune` trains the result with its zeros kept at zero.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    phases: ClassVar[tuple[str, ...]] = PHASES
    granularity: ClassVar[str] = "unstructured"  # or "structured": removes whole channels/layers
    needs_target_compression: ClassVar[bool] = False  # prunes *to* the run's target_compression
    # Share of a grid's `budget` (total training epochs, all phases counted) each phase gets
    # under the fair protocol; the shares are over `phases` and sum to 1.
    budget_split: ClassVar[dict[str, float]] = {}
    Hparams: ClassVar[type[Hparams]] = Hparams

    @classmethod
    def split_budget(cls, budget: int) -> dict[str, int]:
        """Epochs per phase for a budget of `budget` epochs: each phase its share, rounded down,
        the epochs left over to the largest remainders, so that they add up to `budget`. Every
        phase with a share gets at least one epoch, or the budget is refused (UserError)."""
        shares = {phase: share for phase, share in cls.budget_split.items() if share > 0}
        if budget < len(shares):
            raise UserError(f"budget: {budget} epoch(s) cannot be split over {cls.name}'s phases "
                            f"{', '.join(shares)} (needs at least {len(shares)})")  # fmt: skip
        epochs = {phase: int(share * budget) for phase, share in shares.items()}
        by_remainder = sorted(shares, key=lambda phase: shares[phase] * budget - epochs[phase], reverse=True)
        for phase in by_remainder[: budget - sum(epochs.values())]:
            epochs[phase] += 1
        for phase in (phase for phase in shares if epochs[phase] == 0):  # a tiny share: one epoch from the largest phase
            epochs[max(epochs, key=epochs.get)] -= 1
            epochs[phase] = 1
        return epochs

    def __init__(self, hparams: Hparams) -> None:
        self.hparams = hparams
        self.model: nn.Module | None = None
        self.target_compression: float | None = None
        self.prune_epochs = 0
        self.steps_per_epoch = 1
        self.input_shape: tuple[int, ...] = ()

    def setup(
        self, target_compression: float | None, prune_epochs: int, steps_per_epoch: int, input_shape: tuple[int, ...]
    ) -> None:
        """Told by the runner before `attach`: what the run aims for, how long pruning lasts,
        and the shape of one input without the batch dimension (for tracing the model)."""
        if self.needs_target_compression and target_compression is None:
            raise UserError(f"target_compression: method '{self.name}' prunes to a target compression rate; set one (e.g. 4.0)")
        self.target_compression = target_compression
        self.prune_epochs = prune_epochs
        self.steps_per_epoch = steps_per_epoch
        self.input_shape = tuple(input_shape)

    @property
    def shares_dense_stage(self) -> bool:
        """Whether a grid's shared dense stage may stand for this run's dense phase (not when the
        method needs what happened during it: IMP's weights rewound to an epoch of it)."""
        return True

    @classmethod
    def min_epochs(cls, hparams: Hparams, target_compression: float | None) -> dict[str, int]:
        """The fewest epochs each phase needs (IMP: one per round); phases not named need none."""
        return {}

    @classmethod
    def check_protocol(cls, hparams: Hparams, epochs: Mapping[str, int], target_compression: float | None, from_dense_stage: bool) -> None:
        """Raise core.errors.UserError when the run's epochs per phase (or its target, or starting
        from a shared dense stage) do not suit the method; checked when a config is validated.
        Default: every phase has at least `min_epochs`."""
        for phase, fewest in cls.min_epochs(hparams, target_compression).items():
            if epochs.get(phase, 0) < fewest:
                raise UserError(f"phases.{phase}: method '{cls.name}' needs at least {fewest} epoch(s) there, got {epochs.get(phase, 0)}")

    def read_runs(self, runs: SourceRuns) -> None:
        """Told at set-up, before anything is written, where the runs its hyper-parameters name
        are (`match: RUN_ID`): read their records here; a UserError refuses the run."""

    def schedule_cycles(self, epochs: int) -> list[int]:
        """Lengths in epochs of the prune phase's learning-rate cycles, summing to `epochs`: the
        schedule starts again with each (IMP rewinds it every round). Default: one cycle."""
        return [epochs]

    def on_dense_epoch_end(self, model: nn.Module, epoch: int) -> None:
        """Called after each epoch of the dense phase (`epoch` counts from 1 in the run) with the
        dense model: IMP's weight rewinding keeps the weights of the epoch it rewinds to."""

    def check_model(self, model: nn.Module) -> None:
        """Raise core.errors.UserError (naming the method and what is missing) when the method
        cannot prune this model, e.g. a BatchNorm-based method on a model without BatchNorm."""

    def attach(self, model: nn.Module) -> nn.Module:
        """Reparametrise the model before the prune phase. Default: nothing to add."""
        self.model = model
        return model

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer groups. Default: every parameter with the run's lr and weight decay."""
        assert self.model is not None, "attach() must run before param_groups()"
        return [{"params": [p for p in self.model.parameters() if p.requires_grad], "lr": lr, "weight_decay": weight_decay}]

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """Regulariser added to the loss at every step of the prune phase; None for none."""
        return None

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after every optimizer step of the prune phase (`step` counts from 0 in the phase)."""

    def on_epoch_end(self, model: nn.Module, epoch: int, metrics: dict[str, float]) -> None:
        """Called after each prune-phase epoch with that epoch's metrics (loss, val_top1, density)."""

    def histograms(self, model: nn.Module) -> list[Histogram]:
        """Distributions worth seeing in the run's record, read from the model as pruning left it,
        just before `finalize` (PSP: its structure parameters). Default: none."""
        return []

    def finalize(self, model: nn.Module) -> nn.Module:
        """Hard-prune at the end of the prune phase: zeros (unstructured) or smaller layers (structured).
        The returned model has no reparametrisations left."""
        return model

    def snapshot(self, model: nn.Module) -> nn.Module:
        """The hard-pruned model as it would be if pruning stopped now; used for the per-epoch trail."""
        return self.finalize(copy.deepcopy(model))

    def state_dict(self) -> dict[str, Any]:
        """Schedule state for checkpoints (tensors in the model are saved with the model)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
