"""The state of the policy-change recompute workflow, passed from one step to the next (handlers/recompute.py)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from functions.retention.models.entities import DueKind
from shared.keys import TENANT_PATTERN
from shared.models import Model


class RecomputeState(Model):
    """Where the recompute of one policy change stands: the kinds to walk, the one being walked and its cursor,
    the due dates brought forward so far per kind. The state machine loops while `done` is false."""

    model_config = ConfigDict(extra="ignore")

    tenant: str = Field(pattern=TENANT_PATTERN)
    policy_version: int = Field(ge=1)
    kinds: list[DueKind]
    kind_index: int = Field(default=0, ge=0)
    cursor: str | None = Field(default=None, max_length=4096)
    counts: dict[DueKind, int] = Field(default_factory=dict)
    examined: dict[DueKind, int] = Field(default_factory=dict)
    done: bool = False
