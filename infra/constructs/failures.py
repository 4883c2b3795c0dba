"""The failures domain. Recruitment workflow failures, alerts and routing (seed 001).

Its table exists from day one; its issue adds routes, consumers and workflows with the helpers of
`DomainConstruct` (docs/recipe.md)."""

from __future__ import annotations

from infra.constructs.domain import DomainConstruct


class FailuresConstruct(DomainConstruct):
    TABLE_ID = "FailuresTable"
