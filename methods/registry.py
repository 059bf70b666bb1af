"""Method registry: `@register` a PruningMethod subclass, `create(name, **hparams)` builds one."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from prunebench.core.errors import UserError, first_problem
from prunebench.core.registry import Registry
from prunebench.methods.base import Hparams, PruningMethod

_REGISTRY: Registry[type[PruningMethod]] = Registry("method.name", "method")


def register(cls: type[PruningMethod]) -> type[PruningMethod]:
    """Class decorator: make the method available under `cls.name`."""
    return _REGISTRY.add(cls.name, cls)


def available() -> list[str]:
    return _REGISTRY.names()


def get(name: str) -> type[PruningMethod]:
    return _REGISTRY.get(name)


def validate_hparams(name: str, hparams: dict[str, Any]) -> Hparams:
    """The method's hyper-parameters with its defaults filled in; bad ones are a UserError
    naming the method and the field."""
    cls = get(name)
    try:
        return cls.Hparams(**hparams)
    except ValidationError as exc:
        field, message = first_problem(exc)
        message = "unknown hyper-parameter" if message == "unknown key" else message
        raise UserError(f"method {name!r}: {'.'.join(['hparams', field] if field else ['hparams'])}: {message}") from None


def create(name: str, **hparams: Any) -> PruningMethod:
    """Build a method from its name and hyper-parameters (validated by `validate_hparams`)."""
    return get(name)(validate_hparams(name, hparams))
