"""Cluster layer: benchmark grids as Ray-scheduled DDP jobs.

grid.py expands a grid file into validated run configs; plan.py says which of them are done;
session.py connects to Ray; submit.py schedules the rest as Ray Tune trials; trial.py runs one
of them as a Ray Train `TorchTrainer`; worker.py is the loop each DDP worker runs (the harness's
run lifecycle, which keeps checkpoints and results in the run's storage); cli.py is
`prunebench submit`.
"""
