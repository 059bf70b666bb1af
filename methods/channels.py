"""Structured-pruning helpers shared by NS, OT and PSP: L1 sparsity training of BatchNorm scales
and physical removal of channels and residual branches through Torch-Pruning's DependencyGraph.

Channel removal is driven by keep masks that *vote*: a BatchNorm votes over its channels, a Conv
or Linear layer over its input channels. DepGraph couples channels that must go together (the
channels of every BN feeding one residual add, a conv's outputs and the next layer's inputs).
A coupled channel is removed only when every voting module of its group marks it removable, so
no layer loses a channel it still uses; modules without a mask do not vote. The layers that
produce the network's output are never pruned on their output side (the classes stay).
`ChannelGraph` traces a model once for all of this; its `coupled_channels` lists those groups as
BN channels, for methods that rank whole groups.

Width rounding (`round_to` of NS, OT and PSP, in `prune_channels`): CPU and GPU convolution kernels
compute channels in blocks (oneDNN in 8 or 16, tensor cores in multiples of 8), so a layer of 13
channels costs about what 16 cost. With `round_to: N` the keep masks are changed before removal
so that each group's kept width is rounded *up* to a multiple of N: of the channels the group
would lose, those with the highest scores stay until it is. Up, not to nearest: rounding
then only keeps channels the method would remove and never removes one it keeps, so what the
method guarantees of its kept set (OT's share of the squared scales, PSP's structures above the
threshold, every layer keeping a channel) still holds; the cost is fewer channels removed, at
most N - 1 per group. Rounding works on DepGraph's groups, the unit that is removed: one
layer's output channels with what is coupled to them, so the coupled layers of a residual add
keep one common width. A width that would round past the layer's dense width keeps the dense
width (nothing of that group is removed).

Residual branches: the layers on a plain chain from a residual add back to where the chain
forks off the block input. Removing a branch replaces each of its layers with `ZeroBranch`, so
the add only sums its other inputs and the branch's layers (and their MACs) are gone. A branch
whose output no longer depends on its input (a layer of it is all zeros, as PSP leaves it) still
outputs a constant (its last BN's shift, running-mean terms, what an earlier zero layer lets
through); `remove_branches(..., keep_constant=True)` keeps that constant as a `ConstantBranch`,
so the function stays. Callers prune channels first (the layers of branches about to go do not
vote) and remove branches last, when the shape and value the add gets from the branch are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterable, Iterator, Mapping

import torch
from pydantic import Field
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunebench.core.errors import UserError
from prunebench.core.metrics import PRUNABLE_TYPES
from prunebench.methods.base import Hparams, PruningMethod

if TYPE_CHECKING:  # imported where a graph is traced: planning a grid validates methods but traces nothing
    import torch_pruning as tp


def is_scaled_batchnorm(module: nn.Module) -> bool:
    """A BatchNorm layer with a learnable scale gamma: its scales are the channel factors of NS and OT."""
    return isinstance(module, _BatchNorm) and module.weight is not None


def batchnorms(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if is_scaled_batchnorm(m)]


def gamma_l1(model: nn.Module) -> torch.Tensor:
    """sum |gamma| over every BatchNorm scale (the regulariser of NS, and of OT's eq. 2)."""
    return sum(bn.weight.abs().sum() for bn in batchnorms(model))


def scale_scores(layers: Iterable[_BatchNorm]) -> dict[_BatchNorm, torch.Tensor]:
    """|gamma| of each BatchNorm: the channel importance of NS and OT, e.g. for width rounding."""
    return {bn: bn.weight.detach().abs() for bn in layers}


def ensure_one(keep: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Keep the best-scoring entry when a mask would remove everything: a layer keeps a channel."""
    if not keep.any():
        keep = keep.clone()
        keep[scores.argmax()] = True
    return keep


def check_removable(method: str, model: nn.Module) -> None:
    """Refuse a model whose channels cannot be removed: a layer that splits its input among
    several convolutions by sizes it stores (timm's MixedConv2d, MixNet's layers) keeps those
    sizes when Torch-Pruning removes channels from its convolutions, so the pruned model would
    not run."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleDict) and isinstance(getattr(module, "splits", None), (list, tuple)):
            raise UserError(f"method '{method}': layer {name} splits its channels by fixed sizes, which channel removal "
                            "cannot update (timm's MixedConv2d, as in MixNet); use an unstructured method (ltp, dt, global)")  # fmt: skip


def build_graph(model: nn.Module, input_shape: Iterable[int]) -> tp.DependencyGraph:
    """Trace the model on one zero input (batch of 1, `input_shape` without the batch dimension).
    Tracing switches to eval mode; the model's mode is restored afterwards."""
    import torch_pruning as tp

    was_training = model.training
    example = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    finally:
        model.train(was_training)


def _is_add(node: tp.dependency.Node) -> bool:
    """Whether the traced node adds two or more tensors (a residual add)."""
    from torch_pruning.ops import OPTYPE

    return node.type == OPTYPE.ELEMENTWISE and len(node.inputs) > 1 and node.grad_fn.name().startswith("AddBackward")


def _output_layers(graph: tp.DependencyGraph) -> list[nn.Module]:
    """Layers whose outputs reach the network output without passing another layer (the classifier)."""
    layers = set(graph.model.modules())  # graph nodes also hold Torch-Pruning's stand-ins for functional ops
    found, stack, seen = [], [n for n in graph.module2node.values() if not n.outputs], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.module in layers:
            found.append(node.module)
        else:
            stack.extend(node.inputs)
    return found


def _votes(graph: tp.DependencyGraph, module: nn.Module, handler: Callable) -> bool:
    """Whether a group item is the axis a mask of `module` describes: a BN's channels, or the input
    channels of a Conv/Linear (not its outputs)."""
    return isinstance(module, _BatchNorm) or not graph.is_out_channel_pruning_fn(handler)


def _groups(graph: tp.DependencyGraph) -> Iterable[tp.dependency.Group]:
    """Every group of coupled channels that may lose channels (not the output layers' outputs),
    rooted at a Conv/Linear layer's output channels: a group is one layer's outputs with what is
    coupled to them (the BNs and layers that read them, the other inputs of an add), so rounding
    rounds each layer's width. Rooted at BNs as well, one group would hold a whole DenseNet block
    (its last BN reads every layer's outputs), listed by Torch-Pruning in time quadratic in the
    block (16 s for DenseNet-100, 1.6 s rooted at the layers) and rounded as one total width."""
    return graph.get_all_groups(ignored_layers=_output_layers(graph), root_module_types=PRUNABLE_TYPES)


def _ballots(graph: tp.DependencyGraph, group: tp.dependency.Group, keep: Mapping[nn.Module, torch.Tensor]) -> Iterator[tuple[nn.Module, int, int]]:
    """(module, index in its mask, root index of the group) for every entry of a mask that votes in the group."""
    for item in group:
        module, handler = item.dep.target.module, item.dep.handler
        if module in keep and _votes(graph, module, handler):
            yield from ((module, idx, root) for idx, root in zip(item.idxs, item.root_idxs))


def _removable(graph: tp.DependencyGraph, group: tp.dependency.Group, keep: Mapping[nn.Module, torch.Tensor]) -> list[int]:
    """Root indices of the group that at least one module votes on and no voting module keeps."""
    kept: dict[int, bool] = {}
    for module, idx, root in _ballots(graph, group, keep):
        kept[root] = kept.get(root, False) or bool(keep[module][idx])
    return sorted(root for root, is_kept in kept.items() if not is_kept)


def _bn_scales(group: tp.dependency.Group) -> Iterator[tuple[torch.Tensor, int, int]]:
    """(|gamma| of the BN, index in it, root index of the group) for every entry of a scaled BN in the group."""
    for item in group:
        module = item.dep.target.module
        if is_scaled_batchnorm(module):
            scales = module.weight.detach().abs()
            yield from ((scales, idx, root) for idx, root in zip(item.idxs, item.root_idxs))


def _largest(entries: Iterable[tuple[torch.Tensor, int, int]]) -> dict[int, float]:
    """Each root channel's score from (scores, index in them, root) entries, as `_ballots` and
    `_bn_scales` yield them: the largest of its entries. Roots without an entry are absent."""
    best: dict[int, float] = {}
    for scores, idx, root in entries:
        value = float(scores[idx])
        best[root] = max(best.get(root, value), value)
    return best


def _spare_one(graph: tp.dependency.DependencyGraph, group: tp.dependency.Group, idxs: list[int]) -> list[int]:
    """`idxs` (root indices to remove), less one channel of every layer whose output channels they
    would all remove: the one with the largest |gamma| among the group's BNs stays (the first on
    ties). The callers' one-per-mask rule does not cover this in a DenseNet, where a conv's outputs
    are a slice of the wider BNs after each concatenation, so all of them can be marked while the
    BNs keep others."""
    removable = set(idxs)
    if not removable:
        return []
    strength = _largest(_bn_scales(group))
    for item in group:
        roots = set(item.root_idxs)
        if graph.is_out_channel_pruning_fn(item.dep.handler) and roots and roots <= removable:
            removable.discard(max(sorted(roots), key=lambda root: strength.get(root, 0.0)))
    return sorted(removable)


def _rounded(graph: tp.DependencyGraph, groups: list[tp.dependency.Group], keep: Mapping[nn.Module, torch.Tensor],
             scores: Mapping[nn.Module, torch.Tensor], round_to: int) -> dict[nn.Module, torch.Tensor]:  # fmt: skip
    """`keep` with the kept width of every group rounded up to a multiple of `round_to` (module
    docstring): of the channels the group would lose, the best-scoring stay (a root channel scores
    the largest of its entries in `scores`), marked True in every voting mask."""
    rounded = {module: mask.clone() for module, mask in keep.items()}
    for group in groups:
        removable = _removable(graph, group, keep)
        if not removable:
            continue
        lost = set(removable)
        score = _largest((scores[module], idx, root) for module, idx, root in _ballots(graph, group, keep) if root in lost)
        width = len(group[0].root_idxs)
        target = min(width, -(-(width - len(removable)) // round_to) * round_to)
        back = set(sorted(removable, key=score.__getitem__, reverse=True)[: target - (width - len(removable))])
        for module, idx, root in _ballots(graph, group, keep):
            if root in back:
                rounded[module][idx] = True
    return rounded


Channel = tuple[_BatchNorm, int]  # a BatchNorm layer and one of its channel indices
Importance = Callable[["tp.dependency.Group"], torch.Tensor]  # a score per root channel of a group (Torch-Pruning's criteria)


class ChannelGraph:
    """A model traced once, for everything a finalize asks of its structure (coupled channels,
    residual BNs and adds) and for the channel removal itself: tracing and listing DepGraph's
    groups are the slow part (seconds for a DenseNet), so NS, OT and PSP build one per finalize.
    Removal changes the model the graph describes, so `prune_channels` is the last call on it."""

    def __init__(self, model: nn.Module, input_shape: Iterable[int]) -> None:
        self.model = model
        self.graph = build_graph(model, input_shape)
        self.groups = list(_groups(self.graph))

    def coupled_channels(self) -> list[list[Channel]]:
        """The BN channels that DepGraph removes together, one list per removable channel: a plain
        conv-BN channel alone, or the same channel of every BN feeding one residual add. This is
        the unit `prune_channels` removes, so a method that ranks these lists knows what each
        removal costs in BN channels. BN channels no group can remove (e.g. on the class
        outputs) are in none."""
        coupled = []
        for group in self.groups:
            members: dict[int, list[Channel]] = {}
            for item in group:
                module = item.dep.target.module
                if is_scaled_batchnorm(module):
                    for idx, root in zip(item.idxs, item.root_idxs):
                        if (module, idx) not in members.setdefault(root, []):
                            members[root].append((module, idx))
            coupled += members.values()
        return coupled

    def residual_batchnorms(self) -> set[_BatchNorm]:
        """The scaled BNs whose output reaches a residual add through channel-wise ops only (ReLU,
        pooling, reshapes; no Conv, Linear or BN on the way): their channels are summed with another
        tensor's, so no layer-local rule can drop one of them alone."""
        layers = (*PRUNABLE_TYPES, _BatchNorm)

        def reaches_add(node: tp.dependency.Node) -> bool:
            stack, seen = list(node.outputs), set()
            while stack:
                node = stack.pop()
                if node in seen or isinstance(node.module, layers):
                    continue
                seen.add(node)
                if _is_add(node):
                    return True
                stack.extend(node.outputs)
            return False

        nodes = self.graph.module2node
        return {bn for bn in batchnorms(self.model) if bn in nodes and reaches_add(nodes[bn])}

    def residual_adds(self) -> list[list[Branch | None]]:
        """For every residual add of the model, its inputs as branches (None where an input cannot be
        removed as a branch, e.g. an identity shortcut)."""
        names = {module: name for name, module in self.model.named_modules() if name}
        adds = [node for node in self.graph.module2node.values() if _is_add(node)]
        return [[_chain(node, names) for node in add.inputs] for add in adds]

    def prune_channels(
        self,
        keep: Mapping[nn.Module, torch.Tensor],
        round_to: int | None = None,
        scores: Mapping[nn.Module, torch.Tensor] | None = None,
        on_kept_back: Callable[[dict[nn.Module, torch.Tensor]], None] | None = None,
    ) -> nn.Module:
        """Physically remove the channels that every voting mask of their DepGraph group marks False.

        `keep` maps a BatchNorm to a bool mask over its channels, or a Conv/Linear to a bool mask
        over its input channels. Callers keep at least one True per mask (`ensure_one`), so every
        group that is voted on keeps a channel, and no layer loses all its output channels
        (`_spare_one`). With `round_to` above 1 every group's kept width is first rounded up to a
        multiple of it (module docstring), `scores` giving each entry of each mask its importance;
        `on_kept_back` then gets, per mask, the entries rounding turned True, before anything is
        removed (PSP gives those channels their weights back).
        Returns the same (now smaller) model."""
        graph, groups = self.graph, self.groups
        if (round_to or 1) > 1:
            assert scores is not None, "rounding needs the channel scores"
            rounded = _rounded(graph, groups, keep, scores, round_to)
            if on_kept_back is not None:
                on_kept_back({module: rounded[module] & ~mask for module, mask in keep.items()})
            keep = rounded
        return self._remove({id(group): _removable(graph, group, keep) for group in groups})

    def couples_outputs(self, group: tp.dependency.Group) -> bool:
        """Whether the group holds the output channels of several layers (they feed one residual add)."""
        outputs = [item for item in group if isinstance(item.dep.target.module, PRUNABLE_TYPES)
                   and self.graph.is_out_channel_pruning_fn(item.dep.handler)]  # fmt: skip
        return len(outputs) > 1

    def prune_to_widths(self, widths: Mapping[nn.Module, int], importance: Importance | None = None) -> nn.Module:
        """Keep widths[layer] output channels of every layer that roots a group (what is coupled to
        it keeps as many): the highest-scoring by `importance` (one score per channel of the group,
        as Torch-Pruning's importance criteria give them), or the first ones without it. A layer
        keeps one channel at least. Returns the same (now smaller) model."""
        removals = {}
        for group in self.groups:
            root = group[0].dep.target.module
            drop = len(group[0].root_idxs) - max(1, widths.get(root, len(group[0].root_idxs)))
            if drop > 0:
                scores = importance(group) if importance is not None else -torch.arange(len(group[0].root_idxs), dtype=torch.float)
                removals[id(group)] = sorted(int(i) for i in torch.argsort(scores, stable=True)[:drop])
        return self._remove(removals)

    def _remove(self, removals: Mapping[int, list[int]]) -> nn.Module:
        """Remove, per group (by id), those root channels (less what `_spare_one` keeps)."""
        plans = []
        for group in self.groups:
            idxs = _spare_one(self.graph, group, removals.get(id(group), []))
            if idxs:
                plans.append((group[0].dep.target.module, group[0].dep.handler, idxs))
        for module, handler, idxs in plans:  # groups are disjoint, so earlier pruning keeps later indices valid
            self.graph.get_pruning_group(module, handler, idxs).prune()
        return self.model


# --- residual branches ----------------------------------------------------------------------


class ZeroBranch(nn.Module):
    """Stands in for a layer of a removed residual branch: zeros of the branch's output shape
    (per example, recorded at removal), which the add sums at no cost. The pruned model therefore
    runs at the input resolution it was pruned for, which is the run's."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], *self.shape))

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def _compact(value: torch.Tensor) -> torch.Tensor:
    """`value` with size 1 along every dimension it is constant on (a per-channel map stays (C, 1, 1));
    it broadcasts back to `value` exactly."""
    for dim in range(value.dim()):
        first = value.narrow(dim, 0, 1)
        if torch.equal(value, first.expand_as(value)):
            value = first
    return value.clone()


class ConstantBranch(nn.Module):
    """Stands in for the layer that fed the add from a removed branch whose output did not depend
    on its input: that output (per example, recorded at removal), so the add sums exactly what it
    summed before, at no MACs. A buffer: fine-tuning does not train it, checkpoints keep it."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.shape = tuple(value.shape)
        self.register_buffer("value", _compact(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], *self.shape)) + self.value  # a fresh tensor: blocks add to it in place

    def extra_repr(self) -> str:
        return f"shape={self.shape}, value={tuple(self.value.shape)}"


@dataclass(frozen=True)
class Branch:
    """One input of a residual add that is a plain chain of layers; `layers` are qualified module
    names listed from the add backwards (layers[0] feeds the add)."""

    layers: tuple[str, ...]


def _chain(node: tp.dependency.Node, names: Mapping[nn.Module, str]) -> Branch | None:
    """Walk from an add's input back to the fork. None when the input is not a layer (an identity
    shortcut, or an op whose output would not be exactly zero once its layers are gone) or the
    chain merges other tensors on the way."""
    if node.module not in names:
        return None
    layers = []
    while len(node.outputs) == 1:
        if node.module in names:
            layers.append(names[node.module])
        if len(node.inputs) == 0:
            break
        if len(node.inputs) > 1:
            return None
        node = node.inputs[0]
    return Branch(tuple(layers))


def branches_to_remove(adds: list[list[Branch | None]], removable: Callable[[Branch], bool],
                       importance: Callable[[Branch], float]) -> list[Branch]:  # fmt: skip
    """The removable branches, except that every add keeps at least one input: when all of an add's
    inputs are removable branches, its most important one stays."""
    chosen = []
    for inputs in adds:
        candidates = [branch for branch in inputs if branch is not None and removable(branch)]
        if candidates and len(candidates) == len(inputs):
            candidates.remove(max(candidates, key=importance))
        chosen += candidates
    return chosen


def _outputs(model: nn.Module, names: list[str], input_shape: Iterable[int]) -> dict[str, torch.Tensor]:
    """Per-example outputs of the named layers, from one eval-mode forward pass of a zero input.
    Copied in the hook: a block may add to a layer's output in place afterwards."""
    outputs: dict[str, torch.Tensor] = {}

    def recorder(name: str) -> Callable:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            outputs[name] = output[0].detach().clone()

        return hook

    hooks = [model.get_submodule(name).register_forward_hook(recorder(name)) for name in names]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return outputs


def prune_to_layers(graph: ChannelGraph, kept: Mapping[str, int], input_shape: Iterable[int], importance: Importance | None = None) -> nn.Module:
    """The graph's model with kept[name] output channels in each named layer (ChannelGraph.prune_to_widths,
    by `importance` or the first channels), e.g. the widths of another run's record. A residual
    branch whose every layer keeps none is removed as a branch (as OT removes them); any other
    layer keeps a channel."""
    model = graph.model
    modules = dict(model.named_modules())

    def emptied(branch: Branch | None) -> bool:
        layers = [name for name in branch.layers if isinstance(modules.get(name), PRUNABLE_TYPES)] if branch else []
        return bool(layers) and all(kept.get(name, 1) == 0 for name in layers)

    branches = [branch for add in graph.residual_adds() for branch in add if emptied(branch)]
    graph.prune_to_widths({modules[name]: width for name, width in kept.items() if name in modules}, importance)
    return remove_branches(model, branches, input_shape)


def remove_branches(model: nn.Module, branches: list[Branch], input_shape: Iterable[int], keep_constant: bool = False) -> nn.Module:
    """Replace every layer of the given branches with a `ZeroBranch` of the branch's output shape
    (in place; returns the model). With `keep_constant` the caller vouches that the branches'
    outputs do not depend on their input; the layer feeding the add then becomes a `ConstantBranch`
    of that output (eval mode, BN running statistics included), so the model computes what it did.
    Run it after channel pruning, when that output is final."""
    if not branches:
        return model
    outputs = _outputs(model, [branch.layers[0] for branch in branches], input_shape)
    for branch in branches:
        output = outputs[branch.layers[0]]
        for name in branch.layers:
            parent, _, attribute = name.rpartition(".")
            keeps = keep_constant and name == branch.layers[0]
            setattr(model.get_submodule(parent), attribute, ConstantBranch(output) if keeps else ZeroBranch(tuple(output.shape)))
    return model


# --- BN-scale sparsity training (shared by NS and OT) ---------------------------------------


class ChannelRoundingHparams(Hparams):
    round_to: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=None,
        description="round every kept width up to a multiple of this, keeping the best-scoring channels the method would remove "
        "(kernels compute channels in blocks: 8 suits GPU tensor cores and AVX2 CPUs, 16 AVX-512; README, Performance); null or 1: no rounding, "
        "as the papers",
    )


class BatchNormSparsityHparams(ChannelRoundingHparams):
    gamma_init: float | None = Field(
        default=0.5,
        description="BN scales are set to this when the prune phase starts (NS code; OT Sec. IV-A: 'initialized to 0.5 "
        "as suggested by [14]'); null keeps them, e.g. when pruning starts from trained weights",
    )


class BatchNormSparsity(PruningMethod):
    """Sparsity training with lam * sum |gamma| over all BN scales (NS; OT eq. 2), then a
    subclass-specific selection of channels in `finalize`. `hparams.lam` is defined by each subclass."""

    granularity = "structured"
    budget_split = {"prune": 0.8, "finetune": 0.2}  # 160 epochs of sparsity training, 40 of fine-tuning (OT, Sec. IV-A)
    Hparams = BatchNormSparsityHparams

    def check_model(self, model: nn.Module) -> None:
        if not batchnorms(model):
            raise UserError(f"method '{self.name}': model has no BatchNorm layers to prune")
        check_removable(self.name, model)

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        if self.hparams.gamma_init is not None:
            with torch.no_grad():
                for bn in batchnorms(model):
                    bn.weight.fill_(self.hparams.gamma_init)
        return model

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """The L1 term; autograd of |gamma| is the subgradient lam * sign(gamma) that NS adds."""
        return self.hparams.lam * gamma_l1(model)
