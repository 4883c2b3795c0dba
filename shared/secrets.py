"""The one port for tenant secrets of every kind: HMAC keys, webhook signing secrets, provider credentials.

A tenant secret lives in Secrets Manager under `<prefix><tenant>/<kind>`, where the prefix is the stack's
`<stack name>/tenants/` (functions get it as `TENANT_SECRET_PREFIX`) and `kind` is e.g. `hmac`,
`webhook/standard`, `provider/twilio`, `oauth/graph`. Every one is a versioned keyring document:

    {"current": "2", "keys": {"1": "<value>", "2": "<value>"}}

Rotation adds a version and moves `current`; verification accepts every version still held. Values of key
kinds are base64 of random bytes (`key_bytes`); other kinds hold text (`current_text`).

Documents are read through Powertools parameters (cached per execution environment for `max_age` seconds) and
never logged: a `Keyring`'s repr hides its values, and errors name the secret, never a value.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ConfigurationError, DependencyFailure
from shared.keys import SYSTEM_TENANTS, check_tenant

_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}(/[a-z0-9][a-z0-9._-]{0,63})?$")
_VERSION = re.compile(r"^[0-9A-Za-z._-]{1,32}$")
_MISSING_CACHE_SIZE = 1024

Fetch = Callable[[str], Any]


class SecretNotFound(ConfigurationError):
    """The tenant has no secret of this kind (not onboarded, or a tenant id that does not exist)."""


@dataclass(frozen=True)
class Keyring:
    """One tenant secret: its versions and which one is current. The values never appear in its repr."""

    name: str
    current: str
    values: Mapping[str, str] = field(repr=False)

    @property
    def versions(self) -> list[str]:
        """Every version held, oldest first (numeric versions in numeric order)."""
        return sorted(self.values, key=_version_order)

    def current_text(self) -> str:
        return self.values[self.current]

    def key_bytes(self, version: str, *, min_bytes: int = 0) -> bytes:
        """The value of `version` decoded from base64; ConfigurationError if it is not, or shorter than asked."""
        try:
            raw = base64.b64decode(self.values[version], validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"tenant secret {self.name} version {version} is not base64") from None
        if len(raw) < min_bytes:
            raise ConfigurationError(
                f"tenant secret {self.name} version {version} holds {len(raw)} bytes, fewer than {min_bytes}"
            )
        return raw


class TenantSecrets:
    """Reads tenant keyrings from Secrets Manager (through Powertools parameters, cached for `max_age`).

    `fetch` replaces Secrets Manager in tests: it gets the secret's name and returns the document (text or
    parsed), or raises `SecretNotFound`/`KeyError` when there is none.
    """

    def __init__(self, prefix: str, *, fetch: Fetch | None = None, max_age: int = 300) -> None:
        if not prefix:
            raise ConfigurationError("TENANT_SECRET_PREFIX is not set: the function was deployed without secrets")
        self._prefix = prefix
        self._fetch = fetch
        self._max_age = max_age
        # Names that do not exist, remembered for max_age: a caller probing tenant ids through a public route
        # (webhooks) costs one Secrets Manager call per name and window, not one per request.
        self._missing: OrderedDict[str, float] = OrderedDict()

    def name(self, tenant: str, kind: str) -> str:
        """`<prefix><tenant>/<kind>`; BadRequest for an invalid tenant id, ConfigurationError for a bad kind."""
        check_tenant(tenant)
        if tenant in SYSTEM_TENANTS:
            raise SecretNotFound(f"system tenant {tenant} holds no tenant secrets")
        if not _KIND.match(kind):
            raise ConfigurationError(f"invalid tenant secret kind {kind!r}")
        return f"{self._prefix}{tenant}/{kind}"

    def keyring(self, tenant: str, kind: str) -> Keyring:
        """The tenant's keyring of `kind`. SecretNotFound if there is none; ConfigurationError if malformed."""
        name = self.name(tenant, kind)
        missing_since = self._missing.get(name)
        if missing_since is not None:
            if time.monotonic() - missing_since < self._max_age:
                raise SecretNotFound(f"no tenant secret {name}")
            del self._missing[name]
        try:
            raw = self._get(name)
        except SecretNotFound:
            self._missing[name] = time.monotonic()
            while len(self._missing) > _MISSING_CACHE_SIZE:
                self._missing.popitem(last=False)
            raise
        return _parse(name, raw)

    def current(self, tenant: str, kind: str, *, min_bytes: int = 0) -> tuple[str, bytes]:
        """(version, key bytes) of the current version of a key kind."""
        ring = self.keyring(tenant, kind)
        return ring.current, ring.key_bytes(ring.current, min_bytes=min_bytes)

    def all_versions(self, tenant: str, kind: str, *, min_bytes: int = 0) -> dict[str, bytes]:
        """Every version of a key kind still held, oldest first: verification accepts any of them."""
        ring = self.keyring(tenant, kind)
        return {version: ring.key_bytes(version, min_bytes=min_bytes) for version in ring.versions}

    def current_text(self, tenant: str, kind: str) -> tuple[str, str]:
        """(version, value) of the current version of a text kind (provider credentials, OAuth clients)."""
        ring = self.keyring(tenant, kind)
        return ring.current, ring.current_text()

    def _get(self, name: str) -> Any:
        if self._fetch is not None:
            try:
                return self._fetch(name)
            except KeyError:
                raise SecretNotFound(f"no tenant secret {name}") from None
        from aws_lambda_powertools.utilities import parameters

        try:
            return parameters.get_secret(name, max_age=self._max_age)
        except parameters.exceptions.GetParameterError as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise SecretNotFound(f"no tenant secret {name}") from None
            raise DependencyFailure(f"could not read tenant secret {name}: {code or 'error'}") from None


def _error_code(exc: BaseException) -> str | None:
    """The AWS error code behind Powertools' GetParameterError (it wraps the botocore ClientError)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code") or "") or None
        seen = seen.__cause__ or seen.__context__
    return "ResourceNotFoundException" if "ResourceNotFoundException" in str(exc) else None


def _parse(name: str, raw: Any) -> Keyring:
    problem = f"tenant secret {name} is malformed"
    try:
        doc = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        raise ConfigurationError(f"{problem}: not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
        raise ConfigurationError(f"{problem}: expected {{'current': ..., 'keys': {{...}}}}")
    current = str(doc.get("current", ""))
    values: dict[str, str] = {}
    for version, value in doc["keys"].items():
        if not _VERSION.match(str(version)) or not isinstance(value, str) or not value:
            raise ConfigurationError(f"{problem}: version {str(version)[:32]!r} is not a non-empty string")
        values[str(version)] = value
    if current not in values:
        raise ConfigurationError(f"{problem}: the current version is not among its keys")
    return Keyring(name=name, current=current, values=values)


def _version_order(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def new_keyring(version: str = "1", *, nbytes: int = 32) -> str:
    """A fresh keyring document holding one random key of `nbytes` bytes (onboarding, the local runtime)."""
    return json.dumps({"current": version, "keys": {version: base64.b64encode(os.urandom(nbytes)).decode()}})


def rotate_keyring(document: str, *, nbytes: int = 32) -> str:
    """`document` with a new random key as the next numeric version, made current; older versions are kept."""
    doc = json.loads(document)
    numeric = [int(v) for v in doc["keys"] if str(v).isdigit()]
    version = str(max(numeric, default=0) + 1)
    doc["keys"][version] = base64.b64encode(os.urandom(nbytes)).decode()
    doc["current"] = version
    return json.dumps(doc)
