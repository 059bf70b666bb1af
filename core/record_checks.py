"""Consistency across a record's fields: what the schema's per-field ranges cannot see. A record
whose fields contradict each other (top-5 below top-1, a compression that is not 1 / density,
more nonzero weights than weights, a `configuration` that is not its own config's) would be
ranked as if it were true; the leaderboard skips it with one warning naming the field."""

from __future__ import annotations

import math

from prunebench.core.identity import configuration_hash
from prunebench.core.record import SCHEMA_VERSION, ResultRecord

COMPRESSION_TOLERANCE = 1e-3  # relative: records written by other tools round their figures
AT_MOST_DENSE = (("prunable_nonzero", "prunable_params"), ("macs", "macs_dense"), ("flops", "flops_dense"), ("params", "params_dense"))


def inconsistency(record: ResultRecord) -> str | None:
    """The first contradiction in `record` as 'FIELD: what is wrong', or None."""
    if not 1 <= record.schema_version <= SCHEMA_VERSION:
        return f"schema_version: {record.schema_version} is not a known version (1 to {SCHEMA_VERSION})"
    if record.finished and record.error:
        return "error: a finished run has no error"
    if record.top1 is not None and record.top5 is not None and record.top5 < record.top1:
        return f"top5: {record.top5} is below top1 {record.top1}"
    if record.density and record.compression_rate is not None and not math.isclose(
        record.compression_rate, 1 / record.density, rel_tol=COMPRESSION_TOLERANCE
    ):
        return f"compression_rate: {record.compression_rate} is not 1 / density ({1 / record.density:.6g})"
    for part, whole in AT_MOST_DENSE:
        value, dense = getattr(record, part), getattr(record, whole)
        if value is not None and dense is not None and value > dense:
            return f"{part}: {value} is more than {whole} {dense}"
    if record.epochs_to_sparsity is not None and record.epochs_to_sparsity > record.epochs:
        return f"epochs_to_sparsity: {record.epochs_to_sparsity} is more than epochs {record.epochs}"
    if record.configuration and record.config is not None and configuration_hash(record.config) != record.configuration:
        return "configuration: is not the hash of the record's own config"
    return None
