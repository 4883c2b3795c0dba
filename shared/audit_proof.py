"""The provable audit trail's format (version 2): canonical entries, hash chains, Merkle roots, signed digests,
the auditor's export lines, and the pure checks the offline verifier (`ats-audit verify`) runs over them.

Stdlib and `cryptography` only, no AWS: the writer side (stream consumer, hourly digest job, export) and the
auditor's verifier share this module, so both compute the same bytes.

Canonical form (v2)
    RFC 8785 (JCS) applied to a mapping with the value types an audit entry uses. Object keys are sorted by their
    UTF-16 code units (a key with a character above U+FFFF sorts by its surrogates, as JCS requires); no
    whitespace; strings are escaped as JCS (ECMAScript JSON.stringify) does: `"` and `\\` escaped, U+0008,
    U+0009, U+000A, U+000C, U+000D as `\\b \\t \\n \\f \\r`, the other controls below U+0020 as lowercase
    `\\u00xx`, every other character as itself (UTF-8); lone surrogates are refused. Values: strings, booleans,
    integers in the I-JSON safe range (|n| <= 2**53 - 1), lists and nested mappings. Floats, other number types,
    bytes, datetimes and non-string keys are refused (`CanonicalError`). A key whose value is None is OMITTED, at
    every level: a field an entry does not carry is not hashed, so adding an optional field to the writer
    leaves the hash of every entry written before it unchanged. None inside a list is refused (it cannot be
    omitted without moving its neighbours). The output is UTF-8 bytes.

Entries
    A mapping carrying at least `v` (2), `tenant`, `shard` (int >= 0), `seq` (int >= 1, per (tenant, shard),
    from 1 without gaps), `at` (ISO-8601 UTC with `Z`, `format_instant`), `actor`, `action`, `resource`,
    `outcome`, `request_id`; optionally `reason`, `source_ip`, `resources` (a list of ids) and any future field.

Chain hash
    `h_seq = SHA-256(h_{seq-1} || canonical(entry))` with 32 raw bytes of previous hash; `h_0` (GENESIS) is 32 zero
    bytes. One chain per (tenant, shard).

Merkle root of a period
    Leaves are the period's chain hashes in (shard, seq) order: the chain hash is already a hash of the entry
    and its predecessor, so one SHA-256 per entry serves both the chain and the tree. The tree is 64-ary
    (`MERKLE_ARITY`): level 1 hashes consecutive groups of up to 64 leaves as SHA-256(0x00 || leaves), every
    level above hashes groups of up to 64 nodes as SHA-256(0x01 || nodes), until one node is left (the last group
    of a level may be short; a lone node is still hashed, so a root is never a leaf). One leaf gives
    SHA-256(0x00 || leaf). The empty period's root is SHA-256 of the empty string (`EMPTY_ROOT`), as in RFC 6962.
    The tree's shape follows from the leaf count, which the digest signs. A wide tree costs one hash call per 64
    nodes instead of one per node; an inclusion proof is 63 hashes per level (a level covers 64 times more).

Digest (one per tenant per period, written for an empty period too, so a missing digest is detectable)
    `v, tenant, period_start, period_end` (`YYYY-MM-DDTHH:MM:SSZ`, the period is [start, end)),
    `previous_digest_sha256` (hex SHA-256 of the previous digest file's exact bytes; absent for the tenant's
    first), `shards` (per shard with entries in the period: `shard, first_seq, last_seq, count, start_hash`
    (the hash before first_seq), `end_hash`), `count`, `first_at`/`last_at` (earliest and latest `at`; absent
    when empty), `merkle_root` (hex), `key_id`, `algorithm` (`ECDSA_SHA_256`) and `signature` (base64 of a DER
    ECDSA P-256 signature over SHA-256 of the message). The signed message is `canonical(digest without
    signature)`; the digest file's bytes are `canonical(digest with signature)`. This is what AWS KMS returns for
    ECC_NIST_P256 / ECDSA_SHA_256 given the message (MessageType RAW, messages up to 4096 bytes) or, identically,
    its SHA-256 (MessageType DIGEST, any size; see `DigestSigner`).

Export (the auditor's file; one file per tenant and period, or several periods concatenated in order)
    One line per entry in (period, shard, seq) order: `<64 hex of the chain hash>\\t<canonical entry>\\n`. A raw
    tab or newline cannot occur inside canonical JSON, so the line splits unambiguously. The stored hash is an
    index, not evidence: the verifier recomputes every hash from the canonical bytes and the signed start hash,
    and reads stored hashes only to name the entry that fails.

Suggested S3 keys: `digest_object_key`, `export_object_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ConfigDict, Field, ValidationError

from shared.models import Model

VERSION: Literal[2] = 2
ALGORITHM: Literal["ECDSA_SHA_256"] = "ECDSA_SHA_256"
GENESIS = bytes(32)
EMPTY_ROOT = hashlib.sha256(b"").digest()
MERKLE_ARITY = 64
MAX_SAFE_INTEGER = 2**53 - 1
HASH_HEX_LENGTH = 64
_LINE_BODY = HASH_HEX_LENGTH + 1  # where the canonical entry starts in an export line (after "<hex>\t")
_LEAF_NODE = b"\x00"
_INNER_NODE = b"\x01"
REQUIRED_ENTRY_FIELDS = ("v", "tenant", "shard", "seq", "at", "actor", "action", "resource", "outcome", "request_id")
_HEX64 = r"^[0-9a-f]{64}$"
_PERIOD_BOUND = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_INSTANT_RE = re.compile(_INSTANT)
_BASE64 = r"^[A-Za-z0-9+/]+={0,2}$"


class CanonicalError(ValueError):
    """A value the canonical form cannot encode (a float, an unsafe integer, a lone surrogate, ...)."""


class EntryError(ValueError):
    """An entry lacks a required field or carries one of the wrong type."""


class DigestFormatError(ValueError):
    """Bytes that are not a version-2 digest."""


class DigestBuildError(ValueError):
    """Entries (or a previous digest) that a digest must not be built over: the writer's chain is broken."""


class KeyFormatError(ValueError):
    """A public key that is not an EC P-256 SubjectPublicKeyInfo in PEM (or DER)."""


class ExportLineError(ValueError):
    """An export line that is not `<hex hash>\\t<canonical entry>`."""


# --- canonical form ---------------------------------------------------------------------------------------------

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False).encode


def canonical(value: Mapping[str, Any]) -> bytes:
    """The RFC 8785 (JCS) bytes of `value`, None-valued keys omitted at every level (see the module docstring)."""
    if not isinstance(value, Mapping):
        raise CanonicalError("the canonical form encodes a mapping")
    try:
        return _encode(_prepared(value, "$")).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"a string holds a lone surrogate: {exc.reason}") from None


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _prepared(value: Any, path: str) -> Any:
    """`value` checked for the canonical types, mappings rebuilt with their keys in JCS order, None dropped."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer outside the I-JSON safe range (+-2**53 - 1)")
        return int(value)
    if isinstance(value, Mapping):
        keys = [key for key, item in value.items() if item is not None]
        for key in keys:
            if not isinstance(key, str):
                raise CanonicalError(f"{path}: key {key!r} is not a string")
        # Code-point order (Python's) equals UTF-16 code-unit order unless a key holds a character above U+FFFF.
        ordered = sorted(keys, key=_utf16_order) if any(not key.isascii() for key in keys) else sorted(keys)
        return {key: _prepared(value[key], f"{path}.{key}") for key in ordered}
    if isinstance(value, list | tuple):
        out = []
        for index, item in enumerate(value):
            if item is None:
                raise CanonicalError(f"{path}[{index}]: None inside a list cannot be omitted")
            out.append(_prepared(item, f"{path}[{index}]"))
        return out
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are refused (use an integer or a string)")
    raise CanonicalError(f"{path}: {type(value).__name__} has no canonical form")


def format_instant(moment: datetime) -> str:
    """An entry's `at`: ISO-8601 UTC with microseconds and `Z` (fixed width, so text order is time order)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no instant")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_period_bound(moment: datetime) -> str:
    """A period's start or end: ISO-8601 UTC to the second with `Z`."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no instant")
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        raise ValueError("a period bound is a whole second")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """The aware datetime of an `at` or a period bound (ISO-8601 UTC with `Z`)."""
    if not _INSTANT_RE.match(text):
        raise ValueError(f"not an ISO-8601 UTC instant with Z: {text!r}")
    return datetime.fromisoformat(text[:-1] + "+00:00")


# --- entries and chains -----------------------------------------------------------------------------------------


def check_entry(entry: Mapping[str, Any]) -> None:
    """Raise `EntryError` unless `entry` carries every required field with its type."""
    missing = [name for name in REQUIRED_ENTRY_FIELDS if entry.get(name) is None]
    if missing:
        raise EntryError(f"entry lacks {', '.join(missing)}")
    if entry["v"] != VERSION or isinstance(entry["v"], bool):
        raise EntryError(f"entry version {entry['v']!r} is not {VERSION}")
    for name in ("shard", "seq"):
        if not isinstance(entry[name], int) or isinstance(entry[name], bool):
            raise EntryError(f"entry {name} is not an integer")
    if entry["shard"] < 0 or entry["seq"] < 1:
        raise EntryError("entry shard must be >= 0 and seq >= 1")
    for name in ("tenant", "at", "actor", "action", "resource", "outcome", "request_id"):
        if not isinstance(entry[name], str) or not entry[name]:
            raise EntryError(f"entry {name} is not a non-empty string")
    if not _INSTANT_RE.match(entry["at"]):
        raise EntryError("entry at is not ISO-8601 UTC with Z")
    resources = entry.get("resources")
    if resources is not None and (
        not isinstance(resources, list | tuple) or not all(isinstance(item, str) for item in resources)
    ):
        raise EntryError("entry resources is not a list of ids")


def chain_hash(prev: bytes, canonical_entry: bytes) -> bytes:
    """SHA-256(prev || canonical entry bytes): the chain hash and, in a digest's tree, the entry's leaf."""
    return hashlib.sha256(prev + canonical_entry).digest()


def entry_hash(prev: bytes, entry: Mapping[str, Any]) -> bytes:
    """The chain hash of `entry` after the entry whose hash is `prev` (GENESIS before seq 1)."""
    if len(prev) != 32:
        raise ValueError("a previous hash is 32 bytes")
    return chain_hash(prev, canonical(entry))


class LinkedEntry(NamedTuple):
    """An entry as the single writer links it: with the hash before it and its own chain hash."""

    entry: Mapping[str, Any]
    prev_hash: bytes
    hash: bytes


def link(entries: Iterable[Mapping[str, Any]], start: bytes = GENESIS) -> list[LinkedEntry]:
    """Chain `entries` (one (tenant, shard), consecutive seqs) after the hash `start`."""
    out: list[LinkedEntry] = []
    prev = start
    for entry in entries:
        check_entry(entry)
        digest = entry_hash(prev, entry)
        out.append(LinkedEntry(entry, prev, digest))
        prev = digest
    return out


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The 64-ary Merkle root over `leaves` (32-byte chain hashes in (shard, seq) order); EMPTY_ROOT for none."""
    if not leaves:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    width = MERKLE_ARITY * 32
    level = b"".join(leaves)
    prefix = _LEAF_NODE
    while True:
        nodes = [sha256(prefix + level[i : i + width]).digest() for i in range(0, len(level), width)]
        if len(nodes) == 1:
            return nodes[0]
        level = b"".join(nodes)
        prefix = _INNER_NODE


# --- digests ----------------------------------------------------------------------------------------------------


class ChainSection(Model):
    """One shard's run of entries in a period: seqs first_seq..last_seq, chained from start_hash to end_hash."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    shard: int = Field(ge=0, le=MAX_SAFE_INTEGER)
    first_seq: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    last_seq: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    count: int = Field(ge=1, le=MAX_SAFE_INTEGER)
    start_hash: str = Field(pattern=_HEX64)
    end_hash: str = Field(pattern=_HEX64)


class Digest(Model):
    """The signed statement of one tenant's period: every shard's chain section, the count and the Merkle root."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[2] = VERSION
    tenant: str = Field(min_length=1, max_length=256)
    period_start: str = Field(pattern=_PERIOD_BOUND)
    period_end: str = Field(pattern=_PERIOD_BOUND)
    previous_digest_sha256: str | None = Field(default=None, pattern=_HEX64)
    shards: tuple[ChainSection, ...] = ()
    count: int = Field(ge=0, le=MAX_SAFE_INTEGER)
    first_at: str | None = Field(default=None, pattern=_INSTANT)
    last_at: str | None = Field(default=None, pattern=_INSTANT)
    merkle_root: str = Field(pattern=_HEX64)
    key_id: str = Field(min_length=1, max_length=2048)
    algorithm: Literal["ECDSA_SHA_256"] = ALGORITHM
    signature: str | None = Field(default=None, pattern=_BASE64)


class DigestSigner(Protocol):
    """Signs a digest's message. `sign` returns a DER ECDSA P-256 signature over SHA-256 of `message`.

    A KMS adapter calls Sign with SigningAlgorithm ECDSA_SHA_256 and either MessageType RAW (the message itself,
    at most 4096 bytes) or MessageType DIGEST with SHA-256 of the message (any size): both give a signature
    that `verify_digest_signature` accepts. Digests of many shards outgrow 4096 bytes, so DIGEST is the safe
    choice.
    """

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class LocalSigner:
    """A DigestSigner over a local EC P-256 private key (tests, local runs, benchmarks)."""

    algorithm = ALGORITHM

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, key_id: str = "local") -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise KeyFormatError("ECDSA_SHA_256 digests are signed with a P-256 key")
        self._key = private_key
        self.key_id = key_id

    @classmethod
    def generate(cls, key_id: str = "local") -> LocalSigner:
        """A signer over a fresh P-256 key."""
        return cls(ec.generate_private_key(ec.SECP256R1()), key_id)

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA signature over SHA-256 of `message`."""
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def public_key_pem(self) -> bytes:
        """The SubjectPublicKeyInfo PEM an auditor verifies with."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def signed_message(digest: Digest) -> bytes:
    """The bytes a digest's signature covers: its canonical form without the signature."""
    return canonical(digest.model_dump(exclude={"signature"}))


def digest_bytes(digest: Digest) -> bytes:
    """A digest file's exact bytes: the canonical form of the signed digest."""
    if digest.signature is None:
        raise ValueError("an unsigned digest is not written")
    return canonical(digest.model_dump())


def digest_sha256(data: bytes) -> str:
    """What the next digest's `previous_digest_sha256` holds for the digest file `data`."""
    return hashlib.sha256(data).hexdigest()


def parse_digest(data: bytes) -> Digest:
    """A digest from a file's bytes; `DigestFormatError` when they are not a version-2 digest.

    Bytes that parse but are not canonical (whitespace, reordered keys) are returned as parsed:
    `check_digests` refuses them, since the next digest's `previous_digest_sha256` names exact bytes.
    """
    try:
        return Digest.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'file'}: {error['msg']}" for error in exc.errors()[:3]
        )
        raise DigestFormatError(f"not a version-2 digest ({problems})") from None


def build_digest(
    *,
    tenant: str,
    period_start: datetime,
    period_end: datetime,
    entries: Iterable[LinkedEntry],
    previous: bytes | None,
    signer: DigestSigner,
) -> Digest:
    """The signed digest of `tenant`'s period [period_start, period_end) over its linked entries.

    `entries` are every entry the single writer linked in the period (any order; sorted here by shard and seq).
    Each is checked before anything is signed: fields, tenant, consecutive seqs per shard, its prev_hash equal
    to the hash before it, its hash recomputed. `previous` is the previous digest file's bytes (None for the
    tenant's first digest): its period must end where this one starts and its shards must continue here.
    """
    if signer.algorithm != ALGORITHM:
        raise DigestBuildError(f"digests are signed with {ALGORITHM}, not {signer.algorithm}")
    start_text, end_text = format_period_bound(period_start), format_period_bound(period_end)
    if period_end <= period_start:
        raise DigestBuildError("a period ends after it starts")
    by_shard: dict[int, list[LinkedEntry]] = {}
    for linked in entries:
        try:
            check_entry(linked.entry)
        except EntryError as exc:
            raise DigestBuildError(str(exc)) from None
        if linked.entry["tenant"] != tenant:
            raise DigestBuildError(f"entry of tenant {linked.entry['tenant']!r} in a digest of {tenant!r}")
        by_shard.setdefault(linked.entry["shard"], []).append(linked)
    previous_sha = None
    continuing: dict[int, ChainSection] = {}
    if previous is not None:
        before = parse_digest(previous)
        if before.tenant != tenant or before.period_end != start_text:
            raise DigestBuildError("the previous digest is not this tenant's period just before this one")
        previous_sha = digest_sha256(previous)
        continuing = {section.shard: section for section in before.shards}
    sections: list[ChainSection] = []
    leaves: list[bytes] = []
    moments: list[str] = []
    for shard in sorted(by_shard):
        run = sorted(by_shard[shard], key=lambda item: item.entry["seq"])
        first_seq = run[0].entry["seq"]
        last = continuing.get(shard)
        if last is not None and (first_seq != last.last_seq + 1 or run[0].prev_hash.hex() != last.end_hash):
            raise DigestBuildError(f"shard {shard} does not continue from the previous digest")
        if first_seq == 1 and run[0].prev_hash != GENESIS:
            raise DigestBuildError(f"shard {shard} seq 1 does not start from the genesis hash")
        prev = run[0].prev_hash
        for offset, linked in enumerate(run):
            seq = linked.entry["seq"]
            if seq != first_seq + offset:
                raise DigestBuildError(f"shard {shard}: seq {first_seq + offset} is missing or duplicated")
            if linked.prev_hash != prev or entry_hash(prev, linked.entry) != linked.hash:
                raise DigestBuildError(f"shard {shard} seq {seq}: the chain does not link")
            prev = linked.hash
            leaves.append(linked.hash)
            moments.append(linked.entry["at"])
        sections.append(
            ChainSection(
                shard=shard,
                first_seq=first_seq,
                last_seq=first_seq + len(run) - 1,
                count=len(run),
                start_hash=run[0].prev_hash.hex(),
                end_hash=prev.hex(),
            )
        )
    ordered_moments = sorted(moments, key=parse_instant)
    unsigned = Digest(
        tenant=tenant,
        period_start=start_text,
        period_end=end_text,
        previous_digest_sha256=previous_sha,
        shards=tuple(sections),
        count=len(leaves),
        first_at=ordered_moments[0] if ordered_moments else None,
        last_at=ordered_moments[-1] if ordered_moments else None,
        merkle_root=merkle_root(leaves).hex(),
        key_id=signer.key_id,
    )
    signature = signer.sign(signed_message(unsigned))
    return unsigned.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """An EC P-256 public key from SubjectPublicKeyInfo PEM (or the DER KMS GetPublicKey returns)."""
    try:
        key = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_public_key(data)
        )
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"not a SubjectPublicKeyInfo public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFormatError("not an EC P-256 public key (digests are ECDSA_SHA_256)")
    return key


def public_key_pem(der: bytes) -> bytes:
    """The PEM of the DER SubjectPublicKeyInfo that KMS GetPublicKey returns: what an auditor is handed."""
    return load_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verify_digest_signature(digest: Digest, public_key: ec.EllipticCurvePublicKey) -> bool:
    """Whether `digest`'s signature verifies over its message with `public_key`."""
    if digest.signature is None or digest.algorithm != ALGORITHM:
        return False
    try:
        signature = base64.b64decode(digest.signature, validate=True)
        public_key.verify(signature, signed_message(digest), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _key_stamp(period_start: str) -> tuple[str, str]:
    moment = parse_instant(period_start)
    return moment.strftime("%Y/%m/%d"), moment.strftime("%Y%m%dT%H%M%SZ")


def digest_object_key(tenant: str, period_start: str) -> str:
    """Suggested S3 key of a digest: `audit/digests/<tenant>/<yyyy>/<mm>/<dd>/<yyyymmddThhmmssZ>.json`.

    The basic ISO stamp has no colon (safe in every file system an auditor downloads to) and sorts by time.
    """
    day, stamp = _key_stamp(period_start)
    return f"audit/digests/{tenant}/{day}/{stamp}.json"


def export_object_key(tenant: str, period_start: str) -> str:
    """Suggested key of a period's export file: `audit/exports/<tenant>/<yyyy>/<mm>/<dd>/<stamp>.jsonl`."""
    day, stamp = _key_stamp(period_start)
    return f"audit/exports/{tenant}/{day}/{stamp}.jsonl"


# --- export lines -----------------------------------------------------------------------------------------------


def export_line(entry: Mapping[str, Any], chain: bytes) -> bytes:
    """One export line: `<hex chain hash>\\t<canonical entry>\\n`."""
    if len(chain) != 32:
        raise ValueError("a chain hash is 32 bytes")
    return chain.hex().encode("ascii") + b"\t" + canonical(entry) + b"\n"


def export_lines(linked: Iterable[LinkedEntry]) -> Iterator[bytes]:
    """The export lines of linked entries, in the order given (write them in (shard, seq) order per period)."""
    for item in linked:
        yield export_line(item.entry, item.hash)


class ExportedEntry(NamedTuple):
    stored_hash: bytes
    entry: dict[str, Any]
    body: bytes  # the canonical bytes as they stand in the line


def _refuse_constant(name: str) -> Any:
    raise ExportLineError(f"{name} is not JSON an entry holds")


def _refuse_float(text: str) -> Any:
    raise ExportLineError(f"number {text} is not an integer")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ExportLineError("an object repeats a key")
    return out


def parse_export_line(line: bytes) -> ExportedEntry:
    """The stored hash, entry and canonical bytes of an export line (without its newline)."""
    line = line.rstrip(b"\r\n")
    if len(line) <= _LINE_BODY or line[HASH_HEX_LENGTH:_LINE_BODY] != b"\t":
        raise ExportLineError("not `<hex hash>\\t<entry>`")
    try:
        stored = bytes.fromhex(line[:HASH_HEX_LENGTH].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ExportLineError("the stored hash is not hex") from None
    body = line[_LINE_BODY:]
    try:
        entry = json.loads(
            body, parse_float=_refuse_float, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportLineError(f"the entry is not JSON ({exc})") from None
    if not isinstance(entry, dict):
        raise ExportLineError("the entry is not an object")
    return ExportedEntry(stored, entry, body)


# --- verification -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionPlan:
    shard: int
    first_seq: int
    count: int
    start: bytes
    end: bytes


@dataclass(frozen=True)
class PeriodPlan:
    """What a digest says about its period's export lines, in the form the verifier's loop reads fastest."""

    tenant: str
    period_start: str
    count: int
    root: bytes
    sections: tuple[SectionPlan, ...]


def period_plan(digest: Digest) -> PeriodPlan:
    """The plan of `digest`'s period (its shard sections, count and root as bytes)."""
    return PeriodPlan(
        tenant=digest.tenant,
        period_start=digest.period_start,
        count=digest.count,
        root=bytes.fromhex(digest.merkle_root),
        sections=tuple(
            SectionPlan(s.shard, s.first_seq, s.count, bytes.fromhex(s.start_hash), bytes.fromhex(s.end_hash))
            for s in digest.shards
        ),
    )


def period_verifies(plan: PeriodPlan, lines: Sequence[bytes]) -> bool:
    """The fast path: whether `lines` (export lines without newlines) are exactly the period the plan signs.

    One SHA-256 per line over the signed start hash and the line's canonical bytes, no JSON parsing; the stored
    hashes are skipped (they are not evidence). On False, `diagnose_period` names the first failing line.
    """
    if len(lines) != plan.count:
        return False
    sha256 = hashlib.sha256
    body = _LINE_BODY
    leaves: list[bytes] = []
    keep = leaves.append
    position = 0
    for section in plan.sections:
        chain = section.start
        for line in lines[position : position + section.count]:
            chain = sha256(chain + line[body:]).digest()
            keep(chain)
        if chain != section.end:
            return False
        position += section.count
    return merkle_root(leaves) == plan.root


@dataclass(frozen=True)
class EntryProblem:
    """The first line of a period that fails: its index among the period's lines (== len(lines) when the
    export ended first), the shard and seq expected there, and what is wrong."""

    index: int
    shard: int | None
    seq: int | None
    message: str


def diagnose_period(plan: PeriodPlan, lines: Sequence[bytes]) -> EntryProblem | None:
    """The first line of the period that fails (slow path: parses every line). None when every line checks out,
    which leaves the digest's Merkle root as what is wrong."""
    position = 0
    for section in plan.sections:
        chain = section.start
        for offset in range(section.count):
            seq = section.first_seq + offset
            if position >= len(lines):
                missing = plan.count - position
                return EntryProblem(
                    position, section.shard, seq, f"the export ends here: {missing} entries of the period missing"
                )
            problem = _line_problem(plan, section.shard, seq, chain, lines[position], lines[position + 1 :])
            if problem is not None:
                return EntryProblem(position, section.shard, seq, problem)
            chain = chain_hash(chain, lines[position][_LINE_BODY:])
            position += 1
        if chain != section.end:
            # Every line agrees with its stored hash, yet the chain ends elsewhere than the digest signs: the
            # section was rewritten with recomputed hashes.
            return EntryProblem(
                position - section.count,
                section.shard,
                section.first_seq,
                f"shard {section.shard} seq {section.first_seq}..{section.first_seq + section.count - 1} do not "
                "chain to the signed end hash (entries rewritten with recomputed hashes)",
            )
    if position < len(lines):
        return EntryProblem(
            position, None, None, "an entry more than the digest counts: " + describe_line(lines[position])
        )
    return None


def _line_problem(
    plan: PeriodPlan, shard: int, seq: int, chain: bytes, line: bytes, later: Sequence[bytes]
) -> str | None:
    try:
        stored, entry, body = parse_export_line(line)
    except ExportLineError as exc:
        return f"not an export line: {exc}"
    found_shard, found_seq = entry.get("shard"), entry.get("seq")
    if entry.get("tenant") != plan.tenant:
        return f"an entry of tenant {entry.get('tenant')!r} (shard {found_shard}, seq {found_seq}) stands here"
    if found_shard != shard or found_seq != seq:
        if found_shard == shard and isinstance(found_seq, int) and found_seq < seq:
            return f"an entry inserted or duplicated: shard {shard} seq {found_seq} again where seq {seq} belongs"
        elsewhere = _position_of(later, shard, seq)
        if elsewhere is not None:
            return (
                f"out of order: shard {found_shard} seq {found_seq} stands here, "
                f"shard {shard} seq {seq} {elsewhere + 1} lines later"
            )
        if found_shard == shard and isinstance(found_seq, int) and found_seq > seq:
            return f"entry missing: seq {seq}..{found_seq - 1} of shard {shard} absent (seq {found_seq} stands here)"
        return (
            f"expected shard {shard} seq {seq}, found shard {found_shard} seq {found_seq} "
            "(an entry inserted, duplicated or out of order)"
        )
    try:
        check_entry(entry)
        if canonical(entry) != body:
            return "entry altered: not in canonical form"
    except (EntryError, CanonicalError) as exc:
        return f"entry altered: {exc}"
    if chain_hash(chain, body) != stored:
        return "entry altered: its hash does not match (the entry or its stored hash was changed)"
    return None


def _position_of(lines: Sequence[bytes], shard: int, seq: int) -> int | None:
    for index, line in enumerate(lines):
        try:
            entry = parse_export_line(line).entry
        except ExportLineError:
            continue
        if entry.get("shard") == shard and entry.get("seq") == seq:
            return index
    return None


def describe_line(line: bytes) -> str:
    """A short description of an export line for a report (tenant, shard, seq when it parses)."""
    try:
        _, entry, _ = parse_export_line(line)
    except ExportLineError as exc:
        return f"not an export line ({exc})"
    return f"tenant {entry.get('tenant')!r} shard {entry.get('shard')} seq {entry.get('seq')}"


@dataclass(frozen=True)
class DigestFile:
    """A digest as read: where from, its exact bytes, and the parsed digest."""

    name: str
    raw: bytes
    digest: Digest


@dataclass(frozen=True)
class DigestProblem:
    index: int  # in the period-ordered list given to `check_digests`
    name: str
    period: str
    message: str
    bad_signature: bool = False


def digest_file_problem(item: DigestFile, public_key: ec.EllipticCurvePublicKey) -> tuple[str, bool] | None:
    """What is wrong with one digest file on its own (its bytes, signature, internal consistency), and whether
    it is the signature; None when it is sound. Checks needing no other digest, so they run in parallel."""
    digest = item.digest
    if digest.signature is None:
        return "digest unsigned", True
    if digest_bytes(digest) != item.raw:
        return "digest file altered: its bytes are not the canonical form of its content", False
    # The canonical bytes less the signature member are the signed message ("signature" never sorts first).
    message = item.raw.replace(b',"signature":"' + digest.signature.encode("ascii") + b'"', b"", 1)
    try:
        public_key.verify(base64.b64decode(digest.signature, validate=True), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return "signature does not verify with the public key", True
    inconsistency = _inconsistency(digest)
    return (inconsistency, False) if inconsistency else None


def digest_chain_problem(
    files: Sequence[DigestFile], *, until: datetime | None = None, since: datetime | None = None
) -> DigestProblem | None:
    """The first of one tenant's digests (ordered by period) out of the tenant's chain: previous_digest_sha256
    naming the previous file's bytes, periods contiguous from the tenant's first, each shard continuing where it
    stopped; with `until`, digests must cover every period up to that instant.

    With `since` (a range export: the digests of [since, until) only), the first digest must start exactly at
    `since` and may continue an earlier digest the export does not hold, and a shard's first section in the range
    starts from its signed start (seq and hash) instead of seq 1 and the genesis hash; from there on every check
    is the same, so nothing inside the range can be changed, dropped, inserted or reordered unnoticed."""
    shards: dict[int, ChainSection] = {}
    for index, item in enumerate(files):
        digest = item.digest

        def problem(message: str, index: int = index, item: DigestFile = item) -> DigestProblem:
            period = f"{item.digest.period_start}..{item.digest.period_end}"
            return DigestProblem(index, item.name, period, message)

        if index == 0:
            if since is not None:
                if parse_instant(digest.period_start) != since:
                    return problem(f"the digests do not start at {format_period_bound(since)}: missing or cut")
            elif digest.previous_digest_sha256 is not None:
                return problem("digests missing before this one: it names a previous digest that is not present")
        else:
            before = files[index - 1]
            if digest.period_start < before.digest.period_end:
                return problem(f"period overlaps the digest {before.name}")
            if digest.period_start > before.digest.period_end:
                return problem(f"digest missing for {before.digest.period_end}..{digest.period_start}")
            if digest.previous_digest_sha256 != digest_sha256(before.raw):
                return problem(f"out of chain: previous_digest_sha256 does not match {before.name}")
        for section in digest.shards:
            last = shards.get(section.shard)
            if last is None and since is not None:
                shards[section.shard] = section  # the shard's run before the range is in digests not exported
                continue
            start_seq, start_hash = (1, GENESIS.hex()) if last is None else (last.last_seq + 1, last.end_hash)
            if section.first_seq != start_seq or section.start_hash != start_hash:
                return problem(
                    f"shard {section.shard} does not continue its chain (expected seq {start_seq} after the "
                    "hash the earlier digests end at)"
                )
            shards[section.shard] = section
    if until is not None:
        end = parse_instant(files[-1].digest.period_end) if files else None
        if end is None or end < until:
            name = files[-1].name if files else "(none)"
            period = f"{files[-1].digest.period_start}..{files[-1].digest.period_end}" if files else "-"
            return DigestProblem(
                len(files), name, period, f"digests end before {until.isoformat()}: the last digests are missing"
            )
    return None


def wrong_key_hint(files: Sequence[DigestFile], public_key: ec.EllipticCurvePublicKey) -> str:
    """Said after a signature failure: whether any of the tenant's digests verifies with the key at all."""
    if any(verify_digest_signature(item.digest, public_key) for item in files):
        return ""
    return " (no digest verifies with it: wrong public key?)"


def check_digests(
    files: Sequence[DigestFile],
    public_key: ec.EllipticCurvePublicKey,
    *,
    until: datetime | None = None,
    since: datetime | None = None,
) -> DigestProblem | None:
    """The first of one tenant's digests (ordered by period) that fails, on its own (`digest_file_problem`) or in
    the chain (`digest_chain_problem`, with its `since` and `until`)."""
    chained = digest_chain_problem(files, until=until, since=since)
    last = chained.index if chained is not None else len(files)
    for index, item in enumerate(files[: last + 1]):
        found = digest_file_problem(item, public_key)
        if found is not None:
            message, bad_signature = found
            if bad_signature:
                message += wrong_key_hint(files, public_key)
            period = f"{item.digest.period_start}..{item.digest.period_end}"
            return DigestProblem(index, item.name, period, message, bad_signature)
    return chained


def _inconsistency(digest: Digest) -> str | None:
    if parse_instant(digest.period_end) <= parse_instant(digest.period_start):
        return "period ends before it starts"
    order = [section.shard for section in digest.shards]
    if order != sorted(set(order)):
        return "shard sections are not in shard order, or repeat"
    for section in digest.shards:
        if section.count != section.last_seq - section.first_seq + 1:
            return f"shard {section.shard}: count does not match first_seq..last_seq"
    if digest.count != sum(section.count for section in digest.shards):
        return "count is not the sum of the shard sections"
    if digest.count == 0 and (digest.merkle_root != EMPTY_ROOT.hex() or digest.first_at or digest.last_at):
        return "an empty period has the empty root and no first_at/last_at"
    return None
