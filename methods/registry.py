"""Method registry: `@register` a PruningMethod subclass, `create(name, **hparams)` builds one."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from prunebench.core.errors import UserError, first_problem
from prunebench.methods.base import PruningMethod

_REGISTRY: dict[str, type[PruningMethod]] = {}


def register(cls: type[PruningMethod]) -> type[PruningMethod]:
    """Class decorator: make the method available under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> type[PruningMethod]:
    if name not in _REGISTRY:
        raise UserError(f"method.name: unknown method {name!r}; expected one of {', '.join(available())}")
    return _REGISTRY[name]


def create(name: str, **hparams: Any) -> PruningMethod:
    """Build a method from its name and hyper-parameters; bad hyper-parameters are a UserError
    naming the method and the field."""
    cls = get(name)
    try:
        validated = cls.Hparams(**hparams)
    except ValidationError as exc:
        field, message = first_problem(exc)
        message = "unknown hyper-parameter" if message == "unknown key" else message
        raise UserError(f"method {name!r}: {'.'.join(['hparams', field] if field else ['hparams'])}: {message}") from None
    return cls(validated)
