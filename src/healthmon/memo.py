"""Values worked out once per object, for objects that are not changed once made.

A settings object and its services tuple are replaced, never changed, by a
reload, yet neither can be a dict key (a pydantic settings model is not
hashable) nor weakly referenced (a tuple). What hot paths derive from them
(an index by name, what the status page shows) is kept by identity instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Objects remembered per function: the running settings and the one before a
# reload, with room for the copies a request may make.
KEEP = 8


def per_object(fn: Callable[[T], R]) -> Callable[[T], R]:
    """``fn(obj)`` once per object, compared by identity (an equal copy is another object).

    The entry holds the object, so its ``id`` is not reused while remembered.
    """
    held: dict[int, tuple[T, R]] = {}

    @functools.wraps(fn)
    def remembered(obj: T) -> R:
        entry = held.get(id(obj))
        if entry is None:
            if len(held) >= KEEP:
                held.clear()
            entry = held[id(obj)] = (obj, fn(obj))
        return entry[1]

    return remembered
