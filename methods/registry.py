"""Method registry: `@register` a PruningMethod subclass, `create(name, **hparams)` builds one."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from prunebench.core.errors import UserError
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
        first = exc.errors()[0]
        field = ".".join(["hparams", *(str(part) for part in first["loc"])])  # a whole-model check has no loc
        message = "unknown hyper-parameter" if first["type"] == "extra_forbidden" else first["msg"]
        raise UserError(f"method {name!r}: {field}: {message}") from None
    return cls(validated)
