"""Iterative magnitude pruning with rewinding: weight rewinding (Frankle & Carbin, ICLR 2019;
Frankle, Dziugaite, Roy & Carbin, "Linear Mode Connectivity and the Lottery Ticket Hypothesis",
ICML 2020) and learning-rate rewinding (Renda, Frankle & Carbin, "Comparing Rewinding and
Fine-tuning in Neural Network Pruning", ICLR 2020).

A dense model is trained (the dense phase, T epochs). Then round r = 1, 2, ..., R:

    prune:   remove the `rate` p of the remaining weights with the smallest |w| over the whole
             network (global magnitude, as Renda et al. prune ResNets), density d_r = (1 - p)^r,
             the last round stopping at the target: d_R = 1 / target_compression,
             R = ceil(log(target_compression) / -log(1 - p));
    rewind:  `weights`: w <- m ⊙ w_k, every weight, BN parameter and statistic set back to its
             value after epoch k of the dense phase (Frankle et al. 2020, "rewinding to iteration
             k"), and the learning-rate schedule started again;
             `lr`: the weights stay as trained, only the learning-rate schedule starts again
             (Renda et al.: retrain with the original schedule's last epochs);
    retrain: train the masked network for the round's epochs, its removed weights held at zero.

The prune phase holds every round: its E epochs are split over the R rounds (round r gets
floor(r E / R) - floor((r - 1) E / R) epochs), its learning-rate schedule runs once per round
(PruningMethod.schedule_cycles), so the trail shows each round at its density and a grid's cost
counts every round's epochs. The rewound schedule is the prune phase's (its lr and schedule): give
it the dense phase's to replay the original one, as the papers do.

Bad settings are refused before anything runs: a rate outside (0, 1), a rewinding epoch beyond
the dense phase, weight rewinding without k or from a shared dense stage (the weights of epoch k
are the run's own dense phase's), fewer prune epochs than rounds.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping

import torch
from pydantic import Field
from torch import nn

from prunebench.core.errors import RunFailed, UserError
from prunebench.methods.base import Hparams
from prunebench.methods.global_magnitude import global_magnitude_masks
from prunebench.methods.masks import MaskedTraining, prunable_weights
from prunebench.methods.registry import register


def round_densities(rate: float, target_compression: float) -> list[float]:
    """d_r = (1 - rate)^r until the next would pass 1 / target_compression, which is the last."""
    final = 1.0 / target_compression
    rounds = max(1, math.ceil(math.log(target_compression) / -math.log1p(-rate) - 1e-9))
    return [max((1.0 - rate) ** r, final) for r in range(1, rounds)] + [final]


def round_lengths(epochs: int, rounds: int) -> list[int]:
    """The prune phase's epochs over the rounds, as evenly as whole epochs allow (later rounds longer)."""
    return [(r + 1) * epochs // rounds - r * epochs // rounds for r in range(rounds)]


class IMPHparams(Hparams):
    rate: float = Field(
        default=0.2, gt=0, lt=1, description="share of the remaining weights pruned each round; 0.2 in Frankle & Carbin (conv "
        "networks 0.1-0.2) and Renda et al."
    )
    rewind: Literal["weights", "lr"] = Field(
        default="lr", description="weights: back to epoch rewind_epoch's weights and schedule (Frankle et al. 2020); "
        "lr: keep the weights, restart the schedule (Renda et al. 2020, who find it at least as accurate)"
    )
    rewind_epoch: int | None = Field(
        default=None, ge=1, description="weights: the dense-phase epoch rewound to; Frankle et al. 2020 rewind to early in "
        "training (ResNet-20 on CIFAR-10: a few thousand iterations, a few % of training); no default"
    )


@register
class IterativeMagnitude(MaskedTraining):
    name = "imp"
    summary = "iterative magnitude pruning, p% per round, with weight rewinding (Frankle et al.) or lr rewinding (Renda et al.)"
    phases = ("dense", "prune")
    granularity = "unstructured"
    budget_split = {"dense": 0.5, "prune": 0.5}
    needs_target_compression = True
    Hparams = IMPHparams

    def __init__(self, hparams: IMPHparams) -> None:
        super().__init__(hparams)
        self.rewind_state: dict[str, torch.Tensor] | None = None
        self.round = 0
        self.epochs_done = 0
        self.densities: list[float] = []

    @property
    def shares_dense_stage(self) -> bool:
        return self.hparams.rewind != "weights"

    @classmethod
    def check_protocol(cls, hparams: IMPHparams, epochs: Mapping[str, int], target_compression: float | None, from_dense_stage: bool) -> None:
        if hparams.rewind == "weights":
            if hparams.rewind_epoch is None:
                raise UserError("method 'imp': hparams.rewind_epoch: weight rewinding needs the dense-phase epoch to rewind to")
            if hparams.rewind_epoch > epochs.get("dense", 0):
                raise UserError(f"method 'imp': hparams.rewind_epoch: epoch {hparams.rewind_epoch} is beyond the dense phase "
                                f"({epochs.get('dense', 0)} epochs)")  # fmt: skip
            if from_dense_stage:
                raise UserError("method 'imp': rewind: weights rewinds to the run's own dense phase; it cannot start from a shared dense stage")
        elif hparams.rewind_epoch is not None:
            raise UserError("method 'imp': hparams.rewind_epoch: only with rewind: weights (lr rewinding keeps the weights)")
        super().check_protocol(hparams, epochs, target_compression, from_dense_stage)

    @classmethod
    def min_epochs(cls, hparams: IMPHparams, target_compression: float | None) -> dict[str, int]:
        """One epoch per round at least (rate to target_compression takes len(round_densities)
        rounds), and a dense phase that reaches the epoch weights are rewound to."""
        fewest = {"dense": hparams.rewind_epoch} if hparams.rewind_epoch else {}
        return {**fewest, "prune": len(round_densities(hparams.rate, target_compression))} if target_compression else fewest

    def setup(self, target_compression: float | None, prune_epochs: int, steps_per_epoch: int, input_shape: tuple[int, ...]) -> None:
        super().setup(target_compression, prune_epochs, steps_per_epoch, input_shape)
        self.densities = round_densities(self.hparams.rate, target_compression)

    def schedule_cycles(self, epochs: int) -> list[int]:
        return round_lengths(epochs, len(self.densities))

    def on_dense_epoch_end(self, model: nn.Module, epoch: int) -> None:
        if self.hparams.rewind == "weights" and epoch == self.hparams.rewind_epoch:
            self.rewind_state = {key: value.detach().clone() for key, value in model.state_dict().items()}

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        self.round, self.epochs_done = 0, 0
        self._next_round(model)
        return model

    def on_epoch_end(self, model: nn.Module, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs_done += 1
        if self.round < len(self.densities) and self.epochs_done == sum(round_lengths(self.prune_epochs, len(self.densities))[: self.round]):
            self._next_round(model)

    def _next_round(self, model: nn.Module) -> None:
        """Prune to the next round's density, then rewind."""
        self.round += 1
        self.masks = global_magnitude_masks(prunable_weights(model), 1.0 - self.densities[self.round - 1])
        if self.hparams.rewind == "weights":
            if self.rewind_state is None:
                raise RunFailed(f"method 'imp': no weights of dense epoch {self.hparams.rewind_epoch} to rewind to (the dense phase was not trained in this run)")
            model.load_state_dict(self.rewind_state)
        self.apply_masks(model)

    def state_dict(self) -> dict[str, Any]:
        return {"round": self.round, "epochs_done": self.epochs_done, "rewind_state": self.rewind_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.round, self.epochs_done, self.rewind_state = state["round"], state["epochs_done"], state["rewind_state"]
        if self.round:
            self.recover_masks()
