"""Strict construction of settings dataclasses: a misspelt name is an error that lists the valid ones."""
from __future__ import annotations

import dataclasses
from typing import Any


def check_fields(cls: type, values: dict[str, Any], what: str) -> None:
    """Raise ValueError if `values` names a field `cls` (a dataclass) does not have."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid names: {sorted(known)}")
