"""The ground floor: facts every package shares and that import no other package of ours.

errors (what a user can fix), metrics (prunable weights, density, MACs), device (where a
worker runs), identity (when two runs computed the same thing), record (the result schema),
storage (a run directory's files and how they are written).
"""
