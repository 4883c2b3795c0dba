"""Forgetting a person: the last step of every way personal data leaves this service.

`forget_person(tenant, person_id, *, people, vault, exports)` is called by the applicant's own erasure and
leaving the talent pool (logic/subjects.py) and by the daily sweep once a person's `refs` reach 0 (no
application or registration needs their data any more) and no legal hold is on the person. It:

1. shreds the person's data key (`PersonVault.shred`): every sealed copy of their name, email and phone,
   wherever it lies (the table, a backup, a point-in-time restore), can never be opened again;
2. deletes every version and delete marker of every object under `subject-access/<tenant>/<person_id>/` in
   the archive bucket (their subject-access exports);
3. deletes the person item.

The daily sweep forgets the people its runs leave at 0 in batches, with the same effect (dal/sweep.py, the
people phase): exports purged first (only for people whose item has `has_exports`, set before an access export
is written), then each data key item and person item deleted in one transaction, on condition the person is
still at 0 and not held.

The order makes it retryable: the person item goes last, so a crash part-way leaves it to be found and forgotten
again, and each step is idempotent. Callers check holds first; this function does not (it is the mechanism, not
the policy). The ports are Protocols, so the sweep passes its own adapters or fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PersonRecords(Protocol):
    def delete_person(self, tenant: str, person_id: str) -> None: ...


class KeyShredder(Protocol):
    def shred(self, tenant: str, person_id: str) -> None: ...


class ExportPurger(Protocol):
    def purge_person(self, tenant: str, person_id: str) -> int: ...


@dataclass(frozen=True)
class Forgotten:
    person_id: str
    export_versions_deleted: int


def forget_person(
    tenant: str, person_id: str, *, people: PersonRecords, vault: KeyShredder, exports: ExportPurger
) -> Forgotten:
    """Shred the person's key, purge their exports (every version), delete the person item."""
    vault.shred(tenant, person_id)
    versions = exports.purge_person(tenant, person_id)
    people.delete_person(tenant, person_id)
    return Forgotten(person_id=person_id, export_versions_deleted=versions)
