"""The person vault: crypto-shredding (functions/retention/dal/vault.py)."""

from __future__ import annotations

import pytest

from functions.retention.dal.vault import PersonVault, Shredded
from tests.integration.conftest import RetentionWorld


def test_sealed_fields_open_for_their_person_and_never_after_the_key_is_shredded(
    retention_world: RetentionWorld,
) -> None:
    # Given a person's email sealed under their own key
    vault = PersonVault(retention_world.tables["retention_keys"], retention_world.data_key)
    sealed = vault.seal("acme", "p-1", {"email": "ana@example.com", "phone": None})
    assert set(sealed) == {"email"} and "ana@example.com" not in sealed["email"]
    assert PersonVault(retention_world.tables["retention_keys"], retention_world.data_key).open(
        "acme", "p-1", sealed
    ) == {"email": "ana@example.com"}
    # When the key is shredded
    vault.shred("acme", "p-1")
    # Then no vault, cached or fresh, opens the sealed value again
    for reader in (vault, PersonVault(retention_world.tables["retention_keys"], retention_world.data_key)):
        with pytest.raises(Shredded):
            reader.open("acme", "p-1", sealed)


def test_a_sealed_value_does_not_open_as_another_persons(retention_world: RetentionWorld) -> None:
    vault = PersonVault(retention_world.tables["retention_keys"], retention_world.data_key)
    sealed = vault.seal("acme", "p-1", {"email": "ana@example.com"})
    vault.seal("acme", "p-2", {"email": "bo@example.com"})
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        vault.open("acme", "p-2", sealed)
