"""A package's public names imported from their modules on first use.

``import npl_disposal`` (and its subpackages) imports none of its public names'
modules, nor pandas, numpy or scipy: a name's module is imported when the name is
first used, so ``npl-disposal --help`` and a program that needs one reader start fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, homes: Mapping[str, str], public: Iterable[str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``.

    Each name of ``homes`` (name: its module) is imported from its module on first use
    and then kept in ``namespace`` (the package's ``globals()``); ``public`` is the
    package's ``__all__``.
    """
    names = tuple(public)

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
