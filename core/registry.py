"""Named entries (methods, models, data sets) registered where they are defined and looked up
by the name a config gives: one rule for a duplicate name and for an unknown one."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from prunebench.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name. `field` and `kind` name them in errors: "model.name: unknown model 'x'"."""

    def __init__(self, field: str, kind: str) -> None:
        self.field, self.kind = field, kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register `entry` under `name`; a second, different entry of that name is a bug."""
        if self._entries.get(name, entry) is not entry:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str) -> Callable[[T], T]:
        """`@registry.decorator("name")` registers what it decorates under that name."""
        return lambda entry: self.add(name, entry)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The entry, or a UserError naming the field, the unknown name and the known ones."""
        if name not in self._entries:
            raise UserError(f"{self.field}: unknown {self.kind} {name!r}; expected one of {', '.join(self.names())}")
        return self._entries[name]
