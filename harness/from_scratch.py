"""`model.from_architecture: RUN_ID`: a structured run's final architecture trained from scratch
(Liu et al., "Rethinking the Value of Network Pruning", ICLR 2019; OT's Fig. 5 has such an arm).

The source's record gives every layer's kept output channels (`layers`); a freshly initialised
model of the run's architecture (the run's own seed, never trained) is cut to those widths through
the channel graph the structured methods share (methods.channels.prune_to_layers: the first
channels of each layer are kept, residual branches the source removed are removed). Its weights
are the fresh model's initialisation restricted to the kept channels: the initialiser's scale is
that of the dense layer shapes, where Liu et al. initialise the smaller model at its own shapes
(for the fan-out scaled initialisations of the ResNets a factor of at most sqrt(dense / kept)).
Widths are output channels: a source that removed structures inside a layer (PSP's columns or
shapes) is matched in its widths only. The run's record compares it with the dense architecture,
as the source's does, and its source's run id is part of its identity.
"""

from __future__ import annotations

from torch import nn

from prunebench.core.errors import UserError
from prunebench.core.sources import SourceRuns
from prunebench.harness.config import RunConfig
from prunebench.methods.channels import ChannelGraph, prune_to_layers


def source_runs(config: RunConfig) -> SourceRuns:
    """The runs this run may name: its own storage and experiment, its model and data set."""
    return SourceRuns(config.run_files().storage, config.experiment, config.model.name, config.data.name)


def source_architecture(config: RunConfig, fresh: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """`fresh` (an untrained model of the run's architecture) cut to the widths of the run named
    by model.from_architecture; the run is refused (UserError) when that run is no finished
    structured run of this model and data set."""
    field = "model.from_architecture"
    record = source_runs(config).finished(config.model.from_architecture, field)
    if record.granularity != "structured":
        raise UserError(f"{field}: run {record.run_id} is {record.method} ({record.granularity}), not a structured run: "
                        "it has no smaller architecture to train")  # fmt: skip
    kept = {layer.name: layer.out_channels for layer in record.layers}
    return prune_to_layers(ChannelGraph(fresh, input_shape), kept, input_shape)
