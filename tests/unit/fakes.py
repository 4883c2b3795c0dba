"""In-memory fakes of the shared ports, for the unit tier."""

from __future__ import annotations

from shared.audit import AuditEntry, AuditRecord


class FakeAuditLog:
    """Records appended entries in memory (the AuditLog port); the chain fields are placeholders."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def append(self, entry: AuditEntry) -> AuditRecord:
        self.entries.append(entry)
        return AuditRecord(**entry.model_dump(), seq=len(self.entries), prev_hash="0" * 64, hash="f" * 64)
