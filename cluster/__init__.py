"""Cluster layer: benchmark grids as Ray-scheduled DDP jobs.

grid.py expands a grid file into validated run configs; plan.py says which of them are done;
session.py connects to Ray; submit.py schedules the rest as Ray Tune trials; trial.py runs one
of them as a Ray Train `TorchTrainer`; worker.py is the loop each DDP worker runs;
checkpoints.py and storage.py keep checkpoints and results; cli.py is `prunebench submit`.
"""
