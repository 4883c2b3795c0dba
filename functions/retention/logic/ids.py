"""The form of the ATS's ids (vacancies, applications, people, holds), checked before any read or write."""

from __future__ import annotations

import re

from functions.retention.models.entities import RECORD_ID_PATTERN
from shared.errors import BadRequest

_RECORD_ID = re.compile(RECORD_ID_PATTERN)


def check_id(value: str, name: str, *, in_path: bool = False) -> str:
    """`value` if it has the form of the ATS's ids; BadRequest naming the field (or the path part) otherwise."""
    if not _RECORD_ID.match(value):
        raise BadRequest(
            f"{name} must be 1 to 128 letters, digits or `_ . : -`, starting with a letter or digit",
            details=[
                {
                    "loc": ["path", name] if in_path else [name],
                    "msg": f"invalid {name.replace('_', ' ')}",
                    "type": "value_error",
                }
            ],
        )
    return value
