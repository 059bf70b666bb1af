"""The dense reference: no pruning. Every other row of a track is compared with it."""

from prunebench.methods.base import PruningMethod
from prunebench.methods.registry import register


@register
class Dense(PruningMethod):
    name = "dense"
    summary = "no pruning: the reference each track compares against"
    phases = ("dense",)
    granularity = "none"
    budget_split = {"dense": 1.0}
