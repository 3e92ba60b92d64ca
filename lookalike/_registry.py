"""One lazy registry for pluggable parts (engines by URL scheme, embedding providers by name).

An entry names its class as ``"module:QualName"`` and is imported only when first used, so the core
install never imports an optional driver. When the import fails because an extra is missing, the error
says what to install. Aliases map other spellings onto an entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from lookalike.errors import ConfigurationError, MissingDependencyError

__all__ = ["LazyRegistry", "RegistryEntry", "import_target"]

T = TypeVar("T")


@dataclass(frozen=True)
class RegistryEntry:
    """Where a part lives and what installs it: ``target`` is ``"module:QualName"``.

    ``cls`` holds a class registered as an object, so one defined inside a function (which cannot be
    imported back by name) still loads.
    """

    target: str
    extra: str | None = None
    package: str | None = None
    cls: type | None = field(default=None, compare=False, repr=False)


def import_target(target: str) -> Any:
    """Import ``"module:QualName"`` and return the object (``ImportError``/``AttributeError`` propagate)."""
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class LazyRegistry(Generic[T]):
    """Names → lazily imported classes; ``kind`` words the errors (``"database URL scheme"``)."""

    def __init__(self, kind: str, what: str) -> None:
        self.kind = kind  # "embedding provider", "database URL scheme"
        self.what = what  # how a part is described in a missing-extra error: "the {name} engine"
        self._entries: dict[str, RegistryEntry] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self,
        name: str,
        target: str | type,
        *,
        extra: str | None = None,
        package: str | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        """Add or replace an entry (a class, or ``"module:Class"`` imported on first use)."""
        if isinstance(target, type):
            entry = RegistryEntry(f"{target.__module__}:{target.__qualname__}", extra, package, target)
        else:
            entry = RegistryEntry(target, extra, package)
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name

    def unregister(self, name: str) -> None:
        """Remove an entry and its aliases (``KeyError`` when ``name`` is not registered)."""
        canonical = self.canonical(name)
        del self._entries[canonical]
        self._aliases = {a: n for a, n in self._aliases.items() if n != canonical}

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (an alias or the name itself)."""
        return self._aliases.get(name, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) in self._entries

    def names(self) -> list[str]:
        """The registered names (aliases excluded), sorted."""
        return sorted(self._entries)

    def entry(self, name: str) -> RegistryEntry:
        """The entry for ``name``, or a :class:`ConfigurationError` listing the known names."""
        entry = self._entries.get(self.canonical(name))
        if entry is None:
            raise ConfigurationError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return entry

    def items(self) -> list[tuple[str, RegistryEntry]]:
        """``(name, entry)`` pairs, sorted by name."""
        return sorted(self._entries.items())

    def load(self, name: str) -> type[T]:
        """Import and return the class for ``name``.

        A missing optional dependency raises :class:`MissingDependencyError` saying which extra to
        install; an import error in a part that needs no extra is a bug and propagates as it is.
        """
        canonical = self.canonical(name)
        entry = self.entry(canonical)
        if entry.cls is not None:
            return cast("type[T]", entry.cls)
        try:
            return cast("type[T]", import_target(entry.target))
        except ImportError as exc:
            if entry.extra:
                raise MissingDependencyError(
                    self.what.format(name=canonical), entry.extra, package=entry.package
                ) from exc
            raise
