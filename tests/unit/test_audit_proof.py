"""The audit proof format (version 2): RFC 8785 canonical form, chain hashes, the 64-ary Merkle root, signed
digests and export lines."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.audit_proof import (
    EMPTY_ROOT,
    GENESIS,
    CanonicalError,
    DigestBuildError,
    DigestFile,
    DigestFormatError,
    ExportLineError,
    KeyFormatError,
    LinkedEntry,
    LocalSigner,
    build_digest,
    canonical,
    check_digests,
    digest_bytes,
    digest_object_key,
    digest_sha256,
    entry_hash,
    export_line,
    format_instant,
    link,
    load_public_key,
    merkle_root,
    parse_digest,
    parse_export_line,
    public_key_pem,
    signed_message,
    verify_digest_signature,
)
from shared.models import Model

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

# RFC 8785 section 3.2.4: the UTF-8 bytes of the canonical form of the section 3.2.2 sample, as the RFC prints them.
RFC8785_SAMPLE_UTF8 = bytes.fromhex(
    "7b226c69746572616c73223a5b6e756c6c2c747275652c66616c73655d2c226e756d62657273223a5b3333333333333333332e3333"
    "33333333333333332c31652b33302c342e352c302e3030322c31652d32375d2c22737472696e67223a22e282ac245c75303030665c"
    "6e4127425c225c5c5c5c5c222f227d"
)


def make_entry(tenant: str = "acme", shard: int = 0, seq: int = 1, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "v": 2,
        "tenant": tenant,
        "shard": shard,
        "seq": seq,
        "at": format_instant(T0 + timedelta(seconds=seq)),
        "actor": "user:7f3a9c2e-1b44-4c1d-9e55-0a2b3c4d5e6f",
        "action": "candidate.read",
        "resource": f"candidates/{seq:08d}",
        "outcome": "allowed",
        "request_id": f"req-{shard}-{seq}",
    }
    entry.update(extra)
    return entry


def linked_run(shard: int, seqs: range, start: bytes = GENESIS, tenant: str = "acme") -> list[LinkedEntry]:
    return link([make_entry(tenant, shard, seq) for seq in seqs], start)


# --- canonical form: RFC 8785 vectors -------------------------------------------------------------------------------


def test_rfc8785_string_escaping_matches_the_rfc_bytes():
    # Given the RFC 3.2.2 sample's string ("\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/" once JSON-decoded)
    sample_string = '\u20ac$\u000f\u000aA\'B"\\\\"/'
    # When it is canonicalised on its own
    encoded = canonical({"string": sample_string})
    # Then its member is byte for byte the "string" member of the RFC's canonical output
    member = RFC8785_SAMPLE_UTF8[RFC8785_SAMPLE_UTF8.index(b'"string"') : -1]
    assert encoded == b"{" + member + b"}"
    assert encoded == '{"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode()


def test_rfc8785_literals_and_key_order_of_the_sample():
    # The RFC sample less what our entries do not hold (null in a list, floats): keys still sort "literals" first
    encoded = canonical({"string": "€$", "literals": [True, False]})
    assert encoded == '{"literals":[true,false],"string":"€$"}'.encode()
    assert RFC8785_SAMPLE_UTF8.startswith(b'{"literals":[')


def test_rfc8785_property_sorting_by_utf16_code_units():
    # Given RFC 8785 section 3.2.3's sample
    sample = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    # Then the values come out in the order the RFC lists: the emoji (D83D DE00) before U+FB33, unlike code points
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical(sample) == expected.encode("utf-8")
    assert sorted(sample)[-1] == "\U0001f600"  # code-point order (Python's) would put the emoji last


def test_control_characters_are_escaped_as_jcs_does():
    assert (
        canonical({"s": "\x00\x08\t\n\x0c\r\x1f\x7f\u2028"}) == b'{"s":"\\u0000\\b\\t\\n\\f\\r\\u001f\x7f\xe2\x80\xa8"}'
    )


def test_nested_mappings_sorted_and_none_omitted_at_every_level():
    value = {"b": [{"z": 1, "a": "x"}], "a": {"d": True, "c": None}, "gone": None}
    assert canonical(value) == b'{"a":{"d":true},"b":[{"a":"x","z":1}]}'


@pytest.mark.parametrize(
    "value",
    [
        {"n": 1.0},
        {"n": 333333333.33333329},
        {"n": float("nan")},
        {"n": 2**53},
        {"n": -(2**53)},
        {"list": [1, None]},
        {1: "key is not a string"},
        {"s": "\ud800"},
        {"when": T0},
        {"raw": b"bytes"},
    ],
)
def test_values_without_a_canonical_form_are_refused(value):
    with pytest.raises(CanonicalError):
        canonical(value)


def test_the_safe_integer_bounds_are_accepted():
    assert canonical({"max": 2**53 - 1, "min": -(2**53) + 1}) == b'{"max":9007199254740991,"min":-9007199254740991}'


# --- entries and chains ---------------------------------------------------------------------------------------------


def test_entry_hash_is_sha256_of_previous_hash_and_canonical_bytes():
    entry = make_entry()
    assert entry_hash(GENESIS, entry) == hashlib.sha256(bytes(32) + canonical(entry)).digest()
    second = make_entry(seq=2)
    assert entry_hash(entry_hash(GENESIS, entry), second) == link([entry, second])[1].hash


class EntryBefore(Model):
    """The writer's entry model before `resources` existed."""

    v: int = 2
    tenant: str
    shard: int
    seq: int
    at: str
    actor: str
    action: str
    resource: str
    outcome: str
    request_id: str
    reason: str | None = None
    source_ip: str | None = None


class EntryAfter(EntryBefore):
    """The same model once the optional `resources` field is added."""

    resources: list[str] | None = None


def test_an_entry_written_before_a_new_optional_field_keeps_its_hash():
    # Given an entry hashed by the old writer, exported with its hash
    old = EntryBefore(**make_entry(seq=1))
    line = export_line(old.model_dump(), entry_hash(GENESIS, old.model_dump()))
    # When the new model reads it back (the new field absent: None) and hashes it again
    stored, parsed, _ = parse_export_line(line)
    new = EntryAfter.model_validate(parsed)
    # Then the hash is the one stored: an absent field is not hashed
    assert new.model_dump()["resources"] is None
    assert entry_hash(GENESIS, new.model_dump()) == stored
    # And an entry that does carry it hashes it
    assert entry_hash(GENESIS, {**new.model_dump(), "resources": ["c1"]}) != stored


# --- Merkle root ----------------------------------------------------------------------------------------------------


def leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(index.to_bytes(4, "big")).digest() for index in range(count)]


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_merkle_root_of_an_empty_period_is_sha256_of_nothing():
    assert merkle_root([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_merkle_root_known_answers_on_small_trees():
    one, three, sixty_four = leaves(1), leaves(3), leaves(64)
    assert merkle_root(one) == h(b"\x00" + one[0])
    assert merkle_root(three) == h(b"\x00" + b"".join(three))
    assert merkle_root(sixty_four) == h(b"\x00" + b"".join(sixty_four))
    # 65 leaves: two leaf groups (64 + 1), then one inner node over them
    many = leaves(65)
    assert merkle_root(many) == h(b"\x01" + h(b"\x00" + b"".join(many[:64])) + h(b"\x00" + many[64]))
    # 4097 leaves: 65 leaf groups, two inner nodes (64 + 1), then the root
    big = leaves(4097)
    groups = [h(b"\x00" + b"".join(big[i : i + 64])) for i in range(0, 4097, 64)]
    inner = [h(b"\x01" + b"".join(groups[:64])), h(b"\x01" + groups[64])]
    assert merkle_root(big) == h(b"\x01" + b"".join(inner))
    # Pinned: the root of the 3-leaf tree, so a change of the definition shows
    assert merkle_root(three).hex() == h(b"\x00" + b"".join(three)).hex()


def test_merkle_root_depends_on_order_and_on_every_leaf():
    three = leaves(3)
    assert merkle_root(three) != merkle_root(three[::-1])
    assert merkle_root(three) != merkle_root(three[:2])


# --- digests --------------------------------------------------------------------------------------------------------


def test_digest_sign_parse_and_verify_round_trip():
    # Given a period with two shards, signed
    signer = LocalSigner.generate("arn:aws:kms:eu-west-1:123456789012:key/test")
    entries = linked_run(0, range(1, 4)) + linked_run(1, range(1, 3))
    digest = build_digest(
        tenant="acme", period_start=T0, period_end=T0 + HOUR, entries=entries, previous=None, signer=signer
    )
    # When written and read back
    raw = digest_bytes(digest)
    parsed = parse_digest(raw)
    # Then it is the same digest, its signature verifies with the public key and only with it
    key = load_public_key(signer.public_key_pem())
    assert parsed == digest and digest_bytes(parsed) == raw
    assert verify_digest_signature(parsed, key)
    assert not verify_digest_signature(parsed, load_public_key(LocalSigner.generate().public_key_pem()))
    assert not verify_digest_signature(parsed.model_copy(update={"count": 6}), key)
    # And its fields say what the period holds
    assert (parsed.count, parsed.first_at, parsed.last_at) == (5, entries[0].entry["at"], entries[2].entry["at"])
    assert [(s.shard, s.first_seq, s.last_seq, s.count) for s in parsed.shards] == [(0, 1, 3, 3), (1, 1, 2, 2)]
    assert parsed.shards[0].start_hash == GENESIS.hex() and parsed.shards[0].end_hash == entries[2].hash.hex()
    assert parsed.merkle_root == merkle_root([item.hash for item in entries]).hex()
    assert b'"signature"' not in signed_message(parsed) and raw.startswith(b'{"algorithm":"ECDSA_SHA_256",')
    # The signature is DER ECDSA, as KMS returns it
    assert base64.b64decode(parsed.signature or "")[0] == 0x30


def test_the_next_digest_chains_to_the_previous_file_bytes():
    signer = LocalSigner.generate()
    first_run = linked_run(0, range(1, 3))
    first = digest_bytes(
        build_digest(
            tenant="acme", period_start=T0, period_end=T0 + HOUR, entries=first_run, previous=None, signer=signer
        )
    )
    empty = digest_bytes(
        build_digest(
            tenant="acme", period_start=T0 + HOUR, period_end=T0 + 2 * HOUR, entries=[], previous=first, signer=signer
        )
    )
    third = build_digest(
        tenant="acme",
        period_start=T0 + 2 * HOUR,
        period_end=T0 + 3 * HOUR,
        entries=linked_run(0, range(3, 5), first_run[-1].hash),
        previous=empty,
        signer=signer,
    )
    empty_digest = parse_digest(empty)
    assert (empty_digest.count, empty_digest.shards, empty_digest.merkle_root) == (0, (), EMPTY_ROOT.hex())
    assert empty_digest.first_at is None and b"first_at" not in empty
    assert empty_digest.previous_digest_sha256 == digest_sha256(first)
    assert third.previous_digest_sha256 == hashlib.sha256(empty).hexdigest()
    files = [
        DigestFile(name, raw, parse_digest(raw))
        for name, raw in (("1", first), ("2", empty), ("3", digest_bytes(third)))
    ]
    assert check_digests(files, load_public_key(signer.public_key_pem())) is None


def test_a_digest_is_not_built_over_a_broken_chain():
    signer = LocalSigner.generate()
    run = linked_run(0, range(1, 4))
    build: dict[str, Any] = {
        "tenant": "acme",
        "period_start": T0,
        "period_end": T0 + HOUR,
        "previous": None,
        "signer": signer,
    }
    with pytest.raises(DigestBuildError, match="missing or duplicated"):
        build_digest(entries=[run[0], run[2]], **build)
    with pytest.raises(DigestBuildError, match="does not link"):
        build_digest(entries=[run[0], run[1]._replace(hash=bytes(32)), run[2]], **build)
    with pytest.raises(DigestBuildError, match="tenant"):
        build_digest(entries=linked_run(0, range(1, 2), tenant="globex"), **build)
    with pytest.raises(DigestBuildError, match="genesis"):
        build_digest(entries=linked_run(0, range(1, 2), start=b"\x01" * 32), **build)


def test_digest_object_key_is_dated_and_sortable():
    assert digest_object_key("acme", "2026-11-27T09:00:00Z") == "audit/digests/acme/2026/11/27/20261127T090000Z.json"


def test_unparseable_digests_are_refused():
    for raw in (b"not json", b"{}", b'{"v":3}'):
        with pytest.raises(DigestFormatError):
            parse_digest(raw)


# --- keys and export lines ------------------------------------------------------------------------------------------


def test_public_keys_load_from_pem_and_from_the_der_kms_returns():
    signer = LocalSigner.generate()
    der = load_public_key(signer.public_key_pem()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_pem(der) == signer.public_key_pem()
    with pytest.raises(KeyFormatError):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(KeyFormatError):
        load_public_key(p384.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def test_export_lines_round_trip_and_refuse_what_is_not_canonical_json():
    entry = make_entry(reason="a reason", resources=["c1", "c2"])
    chain = entry_hash(GENESIS, entry)
    line = export_line(entry, chain)
    assert line == chain.hex().encode() + b"\t" + canonical(entry) + b"\n"
    assert parse_export_line(line) == (chain, entry, canonical(entry))
    for bad in (
        b"no tab",
        chain.hex().encode() + b"\t[1]",
        chain.hex().encode() + b'\t{"n":1.5}',
        b"zz" * 32 + b"\t{}",
    ):
        with pytest.raises(ExportLineError):
            parse_export_line(bad)
    with pytest.raises(ExportLineError, match="repeats"):
        parse_export_line(chain.hex().encode() + b'\t{"a":1,"a":2}')
