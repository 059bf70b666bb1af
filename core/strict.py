"""The one strict pydantic base: config sections, method hyper-parameters and result records.

Unknown keys are rejected (a typo fails before compute is spent), numbers are finite (`.inf`,
`.nan` and `1e999` are refused), and a boolean is not a number (YAML's `true` would otherwise
train with seed 1, or give a method `lam: 1.0`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def number_kind(annotation: Any) -> str | None:
    """'an integer' or 'a number' when the field holds one (directly, in a union or an
    Annotated type), else None."""
    kinds = {annotation, *getattr(annotation, "__args__", ())}
    kinds |= {getattr(kind, "__origin__", None) for kind in kinds}
    return "a number" if float in kinds else "an integer" if int in kinds else None


class Strict(BaseModel):
    """Unknown keys are errors, numbers are finite, and a boolean is not a number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, bool):  # first: this runs for every field of every run a grid plans
            return value
        field = cls.model_fields.get(info.field_name or "")
        kind = number_kind(field.annotation) if field is not None else None
        if kind:
            raise ValueError(f"expected {kind}, got {str(value).lower()}")
        return value
