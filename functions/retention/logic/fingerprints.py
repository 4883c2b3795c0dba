"""Applicant fingerprints (seed 002, issue 11 section 6): a keyed one-way digest of an applicant's normalised
critical data, stored against the vacancy with no applicant id, so that a re-application is recognised as a
duplicate even after the original applicant's data was erased.

- Normalisation makes the spellings of one value equal: an email is Unicode-normalised (NFKC), trimmed and
  case-folded; a phone becomes E.164 through `phonenumbers`.
- Which fields count is the tenant policy's `fingerprint_fields` (default: the email). The digest covers the
  canonical JSON of the selected fields, `[["email", "..."], ["phone", "+44..."]]` in a fixed order, with a
  missing field as null: the field names separate an email from a phone that happened to read the same.
- The digest is `shared.crypto.TenantKeys` (HMAC-SHA256 under the tenant's versioned `hmac` key, the kind
  `application-fingerprint` length-prefixed in front of the value: the platform's domain separation). Look-ups
  compute it under every key version still held, so a rotation keeps older fingerprints matching.

docs/fingerprints.md has the re-identification risk analysis.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from functions.retention.models.entities import FingerprintField
from functions.retention.models.people import PersonData
from shared.errors import BadRequest

FINGERPRINT_KIND = "application-fingerprint"
DEFAULT_PHONE_REGION = "GB"

# Deliberately loose: the ATS owns the address; this only refuses what cannot be an address at all.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_REGION = re.compile(r"^[A-Z]{2}$")
_FIELD_ORDER = tuple(FingerprintField)


class Digester(Protocol):
    """The keyed digests of shared.crypto.TenantKeys."""

    def digest(self, tenant: str, kind: str, value: str) -> str: ...

    def candidates(self, tenant: str, kind: str, value: str) -> list[str]: ...


@dataclass(frozen=True)
class ReportedPerson:
    """The personal data the ATS reports with an application or a registration, as sent."""

    name: str
    email: str
    phone: str | None = None
    phone_region: str = DEFAULT_PHONE_REGION


@dataclass(frozen=True)
class Fingerprints:
    """One applicant's fingerprint: `current` (under the current key version, the one stored) and `lookups`
    (under every version still held, the current one included: what a duplicate check reads)."""

    current: str
    lookups: tuple[str, ...]


def _invalid(field: str, message: str) -> BadRequest:
    return BadRequest(
        f"{field} {message}",
        details=[{"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}],
    )


def normalise_email(raw: str, *, field: str = "person.email") -> str:
    """NFKC, trimmed (any Unicode white space), case-folded, NFKC again (case folding can denormalise).

    BadRequest naming `field` when the result is not a single `local@domain`."""
    text = unicodedata.normalize("NFKC", raw).strip()
    folded = unicodedata.normalize("NFKC", text.casefold())
    if not _EMAIL.match(folded) or len(folded) > 254:
        raise _invalid(field, "is not an email address")
    return folded


def display_email(raw: str) -> str:
    """The email as it is kept (sealed) for the ATS to read back: NFKC and trimmed, case kept."""
    return unicodedata.normalize("NFKC", raw).strip()


def normalise_phone(raw: str, region: str = DEFAULT_PHONE_REGION, *, field: str = "person.phone") -> str:
    """The phone in E.164. A number written with `+` is international; otherwise it is read as a number of
    `region` (ISO 3166-1 alpha-2). BadRequest naming `field` when it cannot be parsed or cannot be a number."""
    import phonenumbers

    if not _REGION.match(region):
        raise _invalid("person.phone_region", "must be an ISO 3166-1 alpha-2 country code such as GB")
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", raw).strip(), region)
    except phonenumbers.NumberParseException:
        raise _invalid(field, "is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise _invalid(field, "is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_person(person: ReportedPerson) -> PersonData:
    """The person's data as it is kept: name trimmed, email trimmed (case kept), phone in E.164.

    Raises BadRequest naming the field for an email or phone that cannot be one."""
    normalise_email(person.email)  # refuse what cannot be an address before anything is stored
    phone = normalise_phone(person.phone, person.phone_region) if person.phone else None
    return PersonData(name=person.name.strip() or None, email=display_email(person.email), phone=phone)


def canonical_value(data: PersonData, fields: Sequence[FingerprintField]) -> str | None:
    """The canonical text the fingerprint covers: the selected fields, normalised, in a fixed order, as JSON
    pairs (a missing field as null). None when every selected field is missing: nothing to fingerprint."""
    selected = [f for f in _FIELD_ORDER if f in set(fields)]
    values: dict[FingerprintField, str | None] = {
        FingerprintField.EMAIL: normalise_email(data.email) if data.email else None,
        FingerprintField.PHONE: normalise_phone(data.phone) if data.phone else None,
    }
    if not selected or all(values[f] is None for f in selected):
        return None
    return json.dumps([[f.value, values[f]] for f in selected], ensure_ascii=False, separators=(",", ":"))


def fingerprints(
    keys: Digester, tenant: str, vacancy_id: str, data: PersonData, fields: Sequence[FingerprintField]
) -> Fingerprints | None:
    """The applicant's fingerprint for `vacancy_id` under the current key and under every key version still
    held; None when the selected fields are all missing (the application is then not checked for duplicates).

    The vacancy id is part of what is hashed: duplicates are looked for on one vacancy only (the seed compares
    "against all the fingerprints stored against the vacancy"), so one applicant's fingerprints on two vacancies
    differ and a copy of the table cannot link them across vacancies (docs/fingerprints.md)."""
    value = canonical_value(data, fields)
    if value is None:
        return None
    value = json.dumps([vacancy_id, value], ensure_ascii=False, separators=(",", ":"))
    current = keys.digest(tenant, FINGERPRINT_KIND, value)
    lookups = tuple(dict.fromkeys([*keys.candidates(tenant, FINGERPRINT_KIND, value), current]))
    return Fingerprints(current=current, lookups=lookups)


def key_version(fingerprint: str) -> str:
    """The key version of a fingerprint `h<version>:<hex>`."""
    return fingerprint.partition(":")[0].removeprefix("h")
