"""`match: RUN_ID`: a baseline pruned at another finished run's layer profile, so that a method is
compared with random (or L1-norm) pruning at its own per-layer densities or widths, not only at its
overall compression (Blalock et al., MLSys 2020, Sec. 4). The run is read by id from the storage
of the run that names it (core.sources); its record's `layers` give each layer's kept weights and
output channels.
"""

from __future__ import annotations

from pydantic import Field

from torch import nn

from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.core.record import LayerFacts
from prunebench.core.sources import RUN_ID_PATTERN, SourceRuns
from prunebench.methods.base import Hparams, PruningMethod


class MatchHparams(Hparams):
    match: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="run id of a finished run (same storage, experiment, model and data set) whose per-layer profile "
        "(record `layers`) this run takes; null: the method's own rule",
    )


class MatchingMethod(PruningMethod):
    """A method that may take its per-layer targets from another run (`hparams.match`)."""

    Hparams = MatchHparams

    def __init__(self, hparams: MatchHparams) -> None:
        super().__init__(hparams)
        self.matched: dict[str, LayerFacts] = {}

    def read_runs(self, runs: SourceRuns) -> None:
        if self.hparams.match is not None:
            record = runs.finished(self.hparams.match, "method.hparams.match")
            self.matched = {layer.name: layer for layer in record.layers}

    def check_model(self, model: nn.Module) -> None:
        """The source run's layers are this model's: same names, same dense sizes."""
        for name, module in prunable_modules(model) if self.matched else ():
            layer = self.matched.get(name)
            if layer is None or layer.weights_dense != module.weight.numel():
                raise UserError(f"method.hparams.match: run {self.hparams.match} has no layer {name} of "
                                f"{module.weight.numel()} weights; it pruned another architecture")  # fmt: skip
