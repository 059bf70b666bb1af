"""Another run's record, found by its run id in the storage of the run that names it: what a
baseline starts from (`match: RUN_ID` of the random and filter baselines, a structured run's
widths for `model.from_architecture`). The one place that looks a run up by id; a run that
does not exist, has not finished, or trained another model or data set is refused with one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from prunebench.core.errors import UserError
from prunebench.core.record import ResultRecord
from prunebench.core.storage import RESULT_FILE, Storage

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"  # one path component: a run id never climbs out of its experiment


@dataclass(frozen=True)
class SourceRuns:
    """The finished runs a run may name: same storage and experiment, same model and data set."""

    storage: Storage
    experiment: str
    model: str
    dataset: str

    def finished(self, run_id: str, field: str) -> ResultRecord:
        """The record of run `run_id`; `field` (e.g. `method.hparams.match`) names the setting in
        the one-line UserError that refuses a missing, unfinished or mismatched run."""
        if not re.fullmatch(RUN_ID_PATTERN, run_id):
            raise UserError(f"{field}: {run_id!r} is not a run id (letters, digits, '.', '_', '-')")
        run = self.storage.run(self.experiment, run_id)
        raw = run.read_result()
        if raw is None:
            raise UserError(f"{field}: no finished run {run_id} under {self.storage.uri(self.experiment)} (no readable {RESULT_FILE})")
        try:
            record = ResultRecord.model_validate(raw)
        except ValidationError as exc:
            where = ".".join(map(str, exc.errors()[0]["loc"])) or "record"
            raise UserError(f"{field}: {run.file_uri(RESULT_FILE)} is not a valid result record ({where})") from None
        if not record.finished:
            raise UserError(f"{field}: run {run_id} has not finished (status {record.status}); name a finished run")
        if (record.model, record.dataset) != (self.model, self.dataset):
            raise UserError(f"{field}: run {run_id} trained {record.model} on {record.dataset}, "
                            f"not {self.model} on {self.dataset}")  # fmt: skip
        if not record.layers:
            raise UserError(f"{field}: run {run_id} has no per-layer facts (`layers`; a record older than schema version 2)")
        return record
