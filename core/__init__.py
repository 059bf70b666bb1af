"""The ground floor: facts every package shares and that import no other package of ours.

errors (what a user can fix), phases (the phases of a run, in order), registry (named entries:
methods, models, data sets), metrics (prunable weights, density, MACs, per-layer facts), device
(where a worker runs), latency (a pruned model timed against its dense architecture), identity
(when two runs computed the same thing), record (the result schema), storage (a run directory's
files, how they are written and read with limits; storage_probe, the first contact with a
remote storage, in a child process), text (strings made printable before they reach a terminal).
"""
