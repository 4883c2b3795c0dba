"""The user directory (the Cognito user pool) as the deprovisioning route needs it: look a user up, disable them,
sign them out everywhere. Granted `cognito-idp:AdminGetUser`, `AdminDisableUser` and `AdminUserGlobalSignOut` on
the pool only (infra/constructs/platform.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shared.aws import LazyClient
from shared.errors import DependencyFailure

USER_NOT_FOUND = "UserNotFoundException"
NOT_AUTHORIZED = "NotAuthorizedException"


@dataclass(frozen=True)
class DirectoryUser:
    """A user as AdminGetUser returns them: attributes by name (`sub`, `custom:tenant`, `identities`, ...)."""

    username: str
    enabled: bool
    attributes: dict[str, str]


class UserDirectory(Protocol):
    def get(self, username: str) -> DirectoryUser | None: ...

    def disable(self, username: str) -> None: ...

    def sign_out_everywhere(self, username: str) -> None: ...


class CognitoUserDirectory:
    client: LazyClient[Any] = LazyClient("cognito-idp")

    def __init__(self, user_pool_id: str, client: Any | None = None) -> None:
        self._pool = user_pool_id
        self._client = client

    def get(self, username: str) -> DirectoryUser | None:
        """The user, or None when the pool has no such user."""
        try:
            found = self.client.admin_get_user(UserPoolId=self._pool, Username=username)
        except self.client.exceptions.ClientError as failed:
            if failed.response.get("Error", {}).get("Code") == USER_NOT_FOUND:
                return None
            raise DependencyFailure("the user directory is unavailable") from failed
        return DirectoryUser(
            username=str(found["Username"]),
            enabled=bool(found.get("Enabled", True)),
            attributes={a["Name"]: a.get("Value", "") for a in found.get("UserAttributes", [])},
        )

    def disable(self, username: str) -> None:
        """No new sign-in, password or federated, and no new tokens from a refresh."""
        self._call("admin_disable_user", username)

    def sign_out_everywhere(self, username: str) -> None:
        """Revoke every refresh token the user holds (AdminUserGlobalSignOut)."""
        self._call("admin_user_global_sign_out", username, done_if=NOT_AUTHORIZED)

    def _call(self, operation: str, username: str, done_if: str | None = None) -> None:
        try:
            getattr(self.client, operation)(UserPoolId=self._pool, Username=username)
        except self.client.exceptions.ClientError as failed:
            # Disabling already revokes the user's tokens; should Cognito answer the sign-out of a disabled user
            # with NotAuthorized ("User is disabled"), the state the caller wants is reached.
            if done_if is not None and failed.response.get("Error", {}).get("Code") == done_if:
                return
            raise DependencyFailure(f"the user directory refused {operation}") from failed
