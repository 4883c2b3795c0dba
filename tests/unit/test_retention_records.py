"""Applicant fingerprints and the records use cases without AWS (functions/retention/logic/fingerprints.py)."""

from __future__ import annotations

import pytest

from functions.retention.logic.fingerprints import (
    FINGERPRINT_KIND,
    ReportedPerson,
    canonical_value,
    fingerprints,
    key_version,
    normalise_email,
    normalise_person,
    normalise_phone,
)
from functions.retention.models.entities import FingerprintField
from functions.retention.models.people import PersonData
from shared.crypto import TenantKeys
from shared.errors import BadRequest
from shared.secrets import TenantSecrets
from tests.fakes import keyring

EMAIL = (FingerprintField.EMAIL,)
PHONE = (FingerprintField.PHONE,)
BOTH = (FingerprintField.EMAIL, FingerprintField.PHONE)


def _keys(current: str = "1", **versions: bytes) -> TenantKeys:
    ring = keyring(current, {k.removeprefix("v"): v for k, v in versions.items()} or {"1": b"k" * 32})
    return TenantKeys(TenantSecrets("unit/tenants/", fetch=lambda name: ring))


@pytest.mark.parametrize(
    "variant",
    [
        "ana@example.com",
        "  Ana@Example.COM ",
        "ANA@EXAMPLE.COM\t",
        "\u00a0ana@example.com\u2003",  # no-break space and em space around it
        "ａｎａ@ｅｘａｍｐｌｅ.ｃｏｍ",  # fullwidth forms: NFKC makes them ASCII
    ],
)
def test_spellings_of_one_email_normalise_to_the_same_text(variant: str) -> None:
    assert normalise_email(variant) == "ana@example.com"


def test_case_folding_is_unicode_aware() -> None:
    assert normalise_email("STRASSE@example.de") == normalise_email("straße@example.de")


def test_a_different_email_stays_different() -> None:
    assert normalise_email("ana@example.com") != normalise_email("ann@example.com")


@pytest.mark.parametrize("raw", ["not-an-email", "a@b@c", "ana @example.com", "@example.com"])
def test_what_cannot_be_an_email_is_a_400_naming_the_field(raw: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalise_email(raw)
    assert refused.value.details[0]["loc"] == ["body", "person", "email"]


@pytest.mark.parametrize(
    "raw", ["+44 20 7946 0958", "020 7946 0958", "(020) 7946-0958", "+442079460958", "0044 20 7946 0958"]
)
def test_formats_of_one_phone_become_one_e164_number(raw: str) -> None:
    assert normalise_phone(raw, "GB") == "+442079460958"


def test_a_national_number_is_read_in_the_region_given() -> None:
    assert normalise_phone("(201) 555-0123", "US") == "+12015550123"


@pytest.mark.parametrize("raw", ["call me", "12", "+999 1234"])
def test_an_unparsable_phone_is_a_400_naming_the_field(raw: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalise_phone(raw, "GB")
    assert refused.value.details[0]["loc"] == ["body", "person", "phone"]


def test_a_person_is_kept_with_a_trimmed_email_in_its_own_case_and_an_e164_phone() -> None:
    data = normalise_person(ReportedPerson(name=" Ana Lima ", email=" Ana@Example.com ", phone="020 7946 0958"))
    assert data == PersonData(name="Ana Lima", email="Ana@Example.com", phone="+442079460958")


def test_the_fingerprint_is_the_same_for_every_spelling_and_differs_for_another_email() -> None:
    """Seed 002: "If an applicant re-applies to a vacancy, the same critical data they provide is used to generate
    a copy of their fingerprint"."""
    keys = _keys()
    one = fingerprints(keys, "acme", "v-1", PersonData(email="ana@example.com"), EMAIL)
    two = fingerprints(keys, "acme", "v-1", PersonData(email="  ANA@example.COM "), EMAIL)
    other = fingerprints(keys, "acme", "v-1", PersonData(email="bo@example.com"), EMAIL)
    assert one is not None and two is not None and other is not None
    assert one.current == two.current != other.current
    assert one.current.startswith("h1:") and len(one.current) == 3 + 64


def test_an_email_and_a_phone_that_read_the_same_never_share_a_fingerprint() -> None:
    value = "+442079460958"
    as_email = canonical_value(PersonData(email=f"{value}@x"), EMAIL)
    assert canonical_value(PersonData(phone=value), PHONE) == '[["phone","+442079460958"]]'
    assert as_email == '[["email","+442079460958@x"]]'
    keys = _keys()
    by_phone = keys.digest("acme", FINGERPRINT_KIND, '[["phone","x"]]')
    by_email = keys.digest("acme", FINGERPRINT_KIND, '[["email","x"]]')
    assert by_phone != by_email


def test_the_fields_that_count_come_from_the_policy() -> None:
    keys = _keys()
    ana_one_phone = PersonData(email="ana@example.com", phone="+442079460958")
    ana_other_phone = PersonData(email="ana@example.com", phone="+442079460959")
    by_email = [fingerprints(keys, "acme", "v-1", p, EMAIL) for p in (ana_one_phone, ana_other_phone)]
    by_both = [fingerprints(keys, "acme", "v-1", p, BOTH) for p in (ana_one_phone, ana_other_phone)]
    assert by_email[0] == by_email[1]
    assert by_both[0] != by_both[1]


def test_nothing_to_fingerprint_when_every_selected_field_is_missing() -> None:
    assert fingerprints(_keys(), "acme", "v-1", PersonData(email="ana@example.com"), PHONE) is None


def test_look_ups_cover_every_key_version_held_and_only_the_current_one_is_stored() -> None:
    keys = _keys("2", v1=b"a" * 32, v2=b"b" * 32)
    found = fingerprints(keys, "acme", "v-1", PersonData(email="ana@example.com"), EMAIL)
    assert found is not None
    assert [key_version(fp) for fp in found.lookups] == ["1", "2"]
    assert key_version(found.current) == "2" and found.current in found.lookups


def test_tenants_have_their_own_keys() -> None:
    ring = {
        "unit/tenants/acme/hmac": keyring("1", {"1": b"a" * 32}),
        "unit/tenants/globex/hmac": keyring("1", {"1": b"g" * 32}),
    }
    keys = TenantKeys(TenantSecrets("unit/tenants/", fetch=ring.__getitem__))
    data = PersonData(email="ana@example.com")
    acme, globex = fingerprints(keys, "acme", "v-1", data, EMAIL), fingerprints(keys, "globex", "v-1", data, EMAIL)
    assert acme is not None and globex is not None and acme.current != globex.current


def test_one_applicants_fingerprints_on_two_vacancies_are_unrelated() -> None:
    """docs/fingerprints.md, linkage across vacancies: the vacancy id is hashed with the critical data, so a copy
    of the table cannot tell that one person applied to two vacancies."""
    keys = _keys()
    data = PersonData(email="ana@example.com")
    first, second = (fingerprints(keys, "acme", vacancy, data, EMAIL) for vacancy in ("v-1", "v-2"))
    assert first is not None and second is not None
    assert first.current != second.current
