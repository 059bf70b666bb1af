"""The phases of a run, in the order they run: `dense` trains the plain model, `prune` trains
with the method attached and ends in its hard-prune, `finetune` trains the pruned model. The
config's epoch budget, a method's phases, the record's `phases` and the board's columns all
name them from here."""

PHASES = ("dense", "prune", "finetune")
