"""What differs between the deployment stages: dev is removable, prod keeps everything and locks exports; and
the enterprise identity providers a stage's user pool federates with (configured by context)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from infra import constants
from shared.auth import Role
from shared.keys import tenant_problem


@dataclass(frozen=True)
class StageConfig:
    """One deployment stage (`-c stage=dev|prod`). Constructs ask it, never compare the name themselves."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in constants.STAGES:
            raise ValueError(f"unknown stage {self.name!r}: choose one of {', '.join(constants.STAGES)}")

    @property
    def is_prod(self) -> bool:
        return self.name == "prod"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """RETAIN in prod; in dev everything goes with the stack (no auto-delete custom resources)."""
        return RemovalPolicy.RETAIN if self.is_prod else RemovalPolicy.DESTROY

    @property
    def deletion_protection(self) -> bool:
        return self.is_prod

    @property
    def key_pending_window(self) -> Duration | None:
        """None keeps KMS's default (30 days); a dev key is scheduled for deletion after the shortest window."""
        return None if self.is_prod else Duration.days(constants.DEV_KEY_PENDING_WINDOW_DAYS)

    @property
    def audit_object_lock(self) -> s3.ObjectLockRetention:
        """COMPLIANCE for the configured years in prod; GOVERNANCE for a day in dev, so a trial stack can go."""
        if self.is_prod:
            return s3.ObjectLockRetention.compliance(Duration.days(365 * constants.AUDIT_OBJECT_LOCK_YEARS))
        return s3.ObjectLockRetention.governance(Duration.days(constants.DEV_AUDIT_OBJECT_LOCK_DAYS))

    def identity_providers(self, scope: Construct) -> tuple[IdentityProviderConfig, ...]:
        """The enterprise identity providers federated with this stage's user pool (none unless configured).

        From the context: `-c identity_provider='<JSON object or list>'` for this synth, else this stage's entry
        of `ats:identityProviders` in cdk.json. A bad configuration fails the synth, naming the provider and field.
        """
        return parse_identity_providers(
            self.name,
            per_stage=scope.node.try_get_context(constants.IDENTITY_PROVIDERS_CONTEXT),
            override=scope.node.try_get_context(constants.IDENTITY_PROVIDER_OVERRIDE_CONTEXT),
        )


# ---- federation with an enterprise identity provider (docs/identity.md) -------------------------------------------

# Cognito's rules for a provider name, narrowed: a letter, then letters, digits or hyphens (no "_": Cognito joins
# the provider name and the IdP's user id with one to make the username).
_PROVIDER_NAME = r"^[A-Za-z][A-Za-z0-9-]{2,31}$"
_RESERVED_NAMES = frozenset({"cognito", "google", "facebook", "loginwithamazon", "signinwithapple"})
_DEFAULT_EMAIL_CLAIM = {
    "saml": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "oidc": "email",
}
_SAML_ONLY = ("metadata_url",)
_OIDC_ONLY = ("issuer", "client_id", "client_secret_name")
IDENTITY_PROVIDERS_ENV = "IDENTITY_PROVIDERS"
# Lambda allows 4 KB of environment per function; the rest of it is the function factory's settings.
IDENTITY_PROVIDERS_ENV_MAX_BYTES = 2048


def _https(url: str, what: str) -> str:
    parsed = urlparse(url)
    local = parsed.scheme == "http" and parsed.hostname in {"localhost", "127.0.0.1"}
    if not (parsed.scheme == "https" or local) or not parsed.hostname:
        raise ValueError(f"{what} {url!r} must be an https URL (http only for localhost)")
    if parsed.fragment:
        raise ValueError(f"{what} {url!r} may not have a fragment")
    return url


class IdentityProviderConfig(BaseModel):
    """One enterprise identity provider (SAML, e.g. Entra ID; or OIDC, e.g. Okta), bound to ONE tenant.

    The tenant is configuration, not a claim: an IdP can only sign people into the tenant it is configured for, so
    a customer's IdP can never assert another customer's tenant. Roles come from the IdP's groups through
    `group_roles`; a group that is not mapped grants nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["saml", "oidc"]
    name: str = Field(pattern=_PROVIDER_NAME, description="The provider's name in Cognito (3-32 characters)")
    tenant: str = Field(description="The one tenant whose people this IdP signs in")
    groups_claim: str = Field(min_length=1, max_length=256, description="The SAML attribute or OIDC claim of groups")
    group_roles: dict[str, tuple[Role, ...]] = Field(min_length=1, description="IdP group -> roles it grants")
    callback_urls: tuple[str, ...] = Field(min_length=1, description="Where the hosted UI returns the code")
    logout_urls: tuple[str, ...] = ()
    email_claim: str | None = Field(default=None, min_length=1, max_length=256)
    metadata_url: str | None = None  # SAML
    issuer: str | None = None  # OIDC
    client_id: str | None = Field(default=None, min_length=1, max_length=255)  # OIDC
    client_secret_name: str | None = Field(default=None, min_length=1, max_length=512)  # OIDC: a Secrets Manager name
    scopes: tuple[str, ...] = ("openid", "email", "profile")  # OIDC: requested from the IdP

    @field_validator("group_roles", mode="before")
    @classmethod
    def _roles_as_lists(cls, value: Any) -> Any:
        # "group": "recruiter" is shorthand for "group": ["recruiter"]
        if isinstance(value, dict):
            return {group: [roles] if isinstance(roles, str) else roles for group, roles in value.items()}
        return value

    @field_validator("group_roles")
    @classmethod
    def _groups_well_formed(cls, value: dict[str, tuple[Role, ...]]) -> dict[str, tuple[Role, ...]]:
        for group, roles in value.items():
            if not group.strip() or group != group.strip():
                raise ValueError(f"group {group!r}: a group name may not be empty or start or end with spaces")
            if "," in group:
                # Cognito hands a multi-valued attribute over as one comma-separated string.
                raise ValueError(f"group {group!r}: a group name may not contain a comma")
            if not roles:
                raise ValueError(f"group {group!r} maps to no role: leave it out instead")
        return value

    @field_validator("tenant")
    @classmethod
    def _customer_tenant(cls, value: str) -> str:
        if problem := tenant_problem(value):
            raise ValueError(f"tenant {value!r} {problem}")
        return value

    @field_validator("callback_urls", "logout_urls")
    @classmethod
    def _urls(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return tuple(_https(url, str(info.field_name).removesuffix("s").replace("_", " ")) for url in value)

    @model_validator(mode="after")
    def _fits_its_type(self) -> IdentityProviderConfig:
        if self.name.lower() in _RESERVED_NAMES:
            raise ValueError(f"name {self.name!r} is reserved by Cognito")
        required, forbidden = (_SAML_ONLY, _OIDC_ONLY) if self.type == "saml" else (_OIDC_ONLY, _SAML_ONLY)
        kind = "a saml" if self.type == "saml" else "an oidc"
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{kind} provider needs {', '.join(missing)}")
        extra = [name for name in forbidden if getattr(self, name) is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} do not apply to {kind} provider")
        if self.metadata_url is not None:
            _https(self.metadata_url, "metadata_url")
        if self.issuer is not None:
            _https(self.issuer, "issuer")
        if self.type == "oidc" and "openid" not in self.scopes:
            raise ValueError("an oidc provider's scopes must include openid")
        return self

    @property
    def email_attribute(self) -> str:
        return self.email_claim or _DEFAULT_EMAIL_CLAIM[self.type]

    @property
    def grants_system_admin(self) -> bool:
        return any(Role.SYSTEM_ADMIN in roles for roles in self.group_roles.values())

    def trigger_config(self) -> dict[str, Any]:
        """What the pre-token-generation trigger and the deprovisioning route need: tenant and group mapping."""
        return {
            "tenant": self.tenant,
            "group_roles": {group: sorted(role.value for role in roles) for group, roles in self.group_roles.items()},
        }


def _as_json(value: Any, where: str) -> Any:
    # A `-c key=value` context value arrives as a string; cdk.json's as parsed JSON.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"context {where}: not valid JSON ({exc})") from None
    return value


def parse_identity_providers(
    stage: str, *, per_stage: Any = None, override: Any = None
) -> tuple[IdentityProviderConfig, ...]:
    """The providers configured for `stage`: `override` (one synth's `-c identity_provider=...`) if given, else
    `per_stage[stage]` (`ats:identityProviders` in cdk.json: stage name -> a provider or a list of them).

    Raises ValueError with a message naming the context key, the provider and the field at fault.
    """
    if override not in (None, ""):
        where = constants.IDENTITY_PROVIDER_OVERRIDE_CONTEXT
        raw = _as_json(override, where)
    elif per_stage not in (None, ""):
        where = constants.IDENTITY_PROVIDERS_CONTEXT
        stages = _as_json(per_stage, where)
        if not isinstance(stages, dict):
            raise ValueError(f"context {where}: expected an object of stage name -> provider(s)")
        unknown = sorted(set(stages) - set(constants.STAGES))
        if unknown:
            raise ValueError(f"context {where}: unknown stages {unknown}; choose from {', '.join(constants.STAGES)}")
        raw = stages.get(stage)
        where = f"{where}.{stage}"
    else:
        return ()
    if raw is None:
        return ()
    entries = raw if isinstance(raw, list) else [raw]
    providers: list[IdentityProviderConfig] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"identity provider {where}[{index}]: expected a JSON object")
        label = f"{where}[{index}]" + (f" ({entry['name']})" if entry.get("name") else "")
        try:
            providers.append(IdentityProviderConfig.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'provider'}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"identity provider {label} is invalid: {problems}") from None
    names = [p.name.lower() for p in providers]
    if len(set(names)) != len(names):
        raise ValueError(f"identity providers in {where}: names must be unique (case-insensitive): {names}")
    if len(identity_providers_environment(providers)[IDENTITY_PROVIDERS_ENV]) > IDENTITY_PROVIDERS_ENV_MAX_BYTES:
        raise ValueError(
            f"identity providers in {where}: the group mapping is over {IDENTITY_PROVIDERS_ENV_MAX_BYTES} bytes "
            "of JSON, too large for the functions' environment; map fewer groups (e.g. only the application's)"
        )
    return tuple(providers)


def identity_providers_environment(providers: Sequence[IdentityProviderConfig]) -> dict[str, str]:
    """`IDENTITY_PROVIDERS` for the pre-token-generation trigger and the deprovisioning route: provider name ->
    {tenant, group_roles}, compact JSON; `{}` (stated, not defaulted) when no provider is configured."""
    config = {provider.name: provider.trigger_config() for provider in providers}
    return {IDENTITY_PROVIDERS_ENV: json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)}
