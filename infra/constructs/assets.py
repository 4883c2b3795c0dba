"""The assets domain. Assets issued to hires, from offer acceptance to offboarding (seed 003).

Its table exists from day one; its issue adds routes, consumers and workflows with the helpers of
`DomainConstruct` (docs/recipe.md)."""

from __future__ import annotations

from infra.constructs.domain import DomainConstruct


class AssetsConstruct(DomainConstruct):
    TABLE_ID = "AssetsTable"
