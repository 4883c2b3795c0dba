"""Adapters the retention handlers build on a request's first use, their modules imported then (cold start).

A function's cold start pays for what every request needs; the bus publisher (the event models and the
EventBridge client) and the tenant's keyed digests (`shared.crypto`, whose module also holds the field cipher
and its KMS client) are needed by some requests only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.crypto import TenantKeys
    from shared.events import EventPublisher


def retention_publisher(bus: str) -> EventPublisher:
    """The publisher of the retention domain's events (source `ats.retention`) to `bus`."""
    from functions.retention.models.events import SOURCE
    from shared.events import bus_publisher

    return bus_publisher(bus, SOURCE)


def tenant_keys(secret_prefix: str) -> TenantKeys:
    """The tenant's keyed digests (fingerprints, link signatures), from the tenant's secrets under `secret_prefix`."""
    from shared.crypto import TenantKeys
    from shared.secrets import TenantSecrets

    return TenantKeys(TenantSecrets(secret_prefix))
