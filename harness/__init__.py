"""The engine: a run config validated, its data, model and method built, trained through its
phases, and its result record written (metrics and the record's schema are in core)."""
