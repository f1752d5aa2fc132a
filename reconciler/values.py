"""`@valueclass`: the project's immutable value classes (plans, models, requests).

To the type checker a `@valueclass` class is a frozen dataclass with slots: every
assignment to a field is an error (mypy --strict runs on the whole package),
and instances hash by their fields. At run time it is the same dataclass but
not frozen: a frozen dataclass sets each field through `object.__setattr__`,
several times what a plain assignment costs, and a plan builds several of
them per field of every tenant (bench/NOTES.md, "Value classes").
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:
        return lambda decorator: decorator


T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def valueclass(cls: type[T]) -> type[T]:
    """`cls` as a dataclass with slots, compared and hashed by its fields (a
    `__hash__` of its own is kept), frozen to the type checker."""
    keeps_hash = "__hash__" in vars(cls)
    return dataclasses.dataclass(slots=True, unsafe_hash=not keeps_hash)(cls)
