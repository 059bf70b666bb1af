"""The ground floor: facts every package shares and that import no other package of ours.

errors (what a user can fix), metrics (prunable weights, density, MACs), device (where a
worker runs), identity (when two runs computed the same thing), record (the result schema),
storage (a run directory's files, how they are written and read with limits; storage_probe,
the first contact with a remote storage, in a child process), text (strings made printable
before they reach a terminal).
"""
