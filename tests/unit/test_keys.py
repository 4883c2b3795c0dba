from __future__ import annotations

import pytest

from shared.errors import BadRequest
from shared.keys import GATEWAY_TENANT, sequence_key, tenant_key


def test_tenant_key_starts_with_the_tenant():
    # Given a tenant and key parts / When a key is built / Then it is tenant-first
    assert tenant_key("acme", "AUDIT") == "T#acme#AUDIT"
    assert tenant_key("acme", "AUDIT", "SEQ") == "T#acme#AUDIT#SEQ"


@pytest.mark.parametrize("tenant", ["", "A", "acme#globex", "_admin", "x" * 80, "acme corp"])
def test_invalid_tenants_are_refused(tenant):
    with pytest.raises(BadRequest):
        tenant_key(tenant, "AUDIT")


def test_key_parts_cannot_smuggle_separators():
    with pytest.raises(BadRequest):
        tenant_key("acme", "AUDIT#T#globex")


def test_system_tenants_are_allowed():
    assert tenant_key(GATEWAY_TENANT, "AUDIT") == "T#_gateway#AUDIT"


def test_sequence_keys_sort_numerically_as_strings():
    assert sorted([sequence_key("SEQ", 10), sequence_key("SEQ", 9)]) == [
        sequence_key("SEQ", 9),
        sequence_key("SEQ", 10),
    ]
