"""The messages domain. Candidate communications across email, SMS, in-app and Teams (seed 000).

Its table exists from day one; its issue adds routes, consumers and workflows with the helpers of
`DomainConstruct` (docs/recipe.md)."""

from __future__ import annotations

from infra.constructs.domain import DomainConstruct


class MessagesConstruct(DomainConstruct):
    TABLE_ID = "MessagesTable"
