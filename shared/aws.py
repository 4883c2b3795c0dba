"""AWS clients, created lazily and cached per execution environment, with botocore's standard retry mode.

Clients come from botocore directly: a boto3 client is a botocore client, and boto3 itself (its resource layer
and the S3 transfer manager it loads) is import time that no function here uses.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any, Generic, TypeVar

ClientT = TypeVar("ClientT")


@cache
def _session() -> Any:
    # One session per execution environment: its loader caches the endpoint and model data that every client
    # reads, so a function's second client costs a fraction of its first (Lambda runs one invocation at a time).
    # Region, credentials and endpoint (AWS_ENDPOINT_URL, the local runtime's emulator) come from the environment.
    import botocore.session

    return botocore.session.get_session()


_creating = threading.Lock()


def client(service: str) -> Any:
    """The shared client for `service` (region, credentials and endpoint come from the environment). Clients are
    thread-safe once made, but making one is not: threads that ask at once get the same client, made once."""
    with _creating:
        return _client(service)


@cache
def _client(service: str) -> Any:
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10)
    return _session().create_client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients and the session (tests that switch endpoints or credentials)."""
    _client.cache_clear()
    _session.cache_clear()


class LazyClient(Generic[ClientT]):
    """The `client` of an adapter: the boto3 client injected as `self._client` (tests), or else the shared client
    for `service`, created on first use rather than at import (cold start) and cached per process.

        class DynamoThingStore:
            client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

            def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
                self._table, self._client = table_name, client

    An adapter with clients of two services names the attribute each is injected as:
    `kms_client = LazyClient("kms", attribute="_kms")`.
    """

    def __init__(self, service: str, *, attribute: str = "_client") -> None:
        self._service = service
        self._attribute = attribute

    def __get__(self, adapter: Any, owner: type | None = None) -> ClientT:
        found: ClientT | None = getattr(adapter, self._attribute)
        if found is None:
            found = client(self._service)
            setattr(adapter, self._attribute, found)
        return found
