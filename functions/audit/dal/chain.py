"""The linked audit chain in the audit table, written only by the linker (functions/audit/handlers/linker.py):

    Chain entry   pk T#<tenant>#AUDIT#<shard>   sk SEQ#<seq, 12 digits>    line, hash, tenant, action, resource,
                                                                          outcome, at, linked_at, source
    Link marker   pk T#<tenant>#AUDIT#<shard>   sk LINKED#<inbox item's sk>
    Tenant        pk AUDIT#TENANTS              sk <tenant>                (a tenant with a chain: the digests)

`line` is the entry's export line without its newline (`<hex chain hash>\\t<canonical entry>`,
shared/audit_proof.py): what an auditor export writes verbatim. Every write is an insert: a chain entry and the
inbox item's link marker go in one transaction conditioned on neither existing, so an inbox item is linked once,
and two linkers cannot give one seq to two entries (the loser re-reads the head and tries again). The same
transaction checks that the entry before the first new one is there with the hash the new one follows: a linker
may link after a head it remembers from its last batch instead of reading it, and a head remembered wrongly (the
table restored to an earlier point, say) is refused rather than leaving a gap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.audit.dal.items import latest_item
from shared import clock
from shared.audit_proof import GENESIS, LinkedEntry, canonical
from shared.aws import LazyClient
from shared.keys import sequence_key, tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CHAIN = "AUDIT"
TENANTS_PK = "AUDIT#TENANTS"
_ABSENT = "attribute_not_exists(pk)"
MAX_ENTRIES_PER_LINK = 98  # TransactWriteItems takes 100 actions: the entries, the marker and the head's check


class AlreadyLinked(Exception):
    """The inbox item's marker exists: another delivery of the same stream record linked it."""


class HeadMoved(Exception):
    """The head the link followed is not the chain's: a seq it wanted is taken (another linker linked into the
    same chain first), or the entry it follows is not there with that hash."""


@dataclass(frozen=True)
class Head:
    seq: int
    hash: bytes


def chain_pk(tenant: str, shard: int) -> str:
    return tenant_key(tenant, CHAIN, str(shard))


def chain_line(linked: LinkedEntry) -> str:
    return linked.hash.hex() + "\t" + canonical(linked.entry).decode("utf-8")


class DynamoChainStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    def head(self, tenant: str, shard: int) -> Head:
        """The chain's last entry (seq 0 and the genesis hash for an empty chain): one consistent Query."""
        item = latest_item(
            self.client,
            self._table,
            chain_pk(tenant, shard),
            sk_prefix="SEQ#",
            ProjectionExpression="sk, #h",
            ExpressionAttributeNames={"#h": "hash"},
        )
        if item is None:
            return Head(0, GENESIS)
        return Head(int(item["sk"]["S"].split("#", 1)[1]), bytes.fromhex(item["hash"]["S"]))

    def link(self, tenant: str, shard: int, source: str, linked: Sequence[LinkedEntry]) -> None:
        """Insert `linked` (consecutive seqs after the head) and the marker of the inbox item `source`, together.
        AlreadyLinked when the marker exists, HeadMoved when a seq is taken or the entry before them is not the
        head they follow."""
        if not 0 < len(linked) <= MAX_ENTRIES_PER_LINK:
            raise ValueError(f"a link holds 1 to {MAX_ENTRIES_PER_LINK} entries")
        pk = chain_pk(tenant, shard)
        now = clock.isoformat(clock.now())
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {"pk": {"S": pk}, "sk": {"S": f"LINKED#{source}"}, "linked_at": {"S": now}},
                    "ConditionExpression": _ABSENT,
                }
            }
        ]
        first_seq = int(linked[0].entry["seq"])
        if first_seq > 1:  # the head followed is the chain's (a genesis link has SEQ#1's absence to go by)
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": sequence_key("SEQ", first_seq - 1)}},
                        "ConditionExpression": "#h = :prev",
                        "ExpressionAttributeNames": {"#h": "hash"},
                        "ExpressionAttributeValues": {":prev": {"S": linked[0].prev_hash.hex()}},
                    }
                }
            )
        for item in linked:
            entry = item.entry
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": pk},
                            "sk": {"S": sequence_key("SEQ", entry["seq"])},
                            "line": {"S": chain_line(item)},
                            "hash": {"S": item.hash.hex()},
                            "prev_hash": {"S": item.prev_hash.hex()},
                            "tenant": {"S": tenant},
                            "action": {"S": entry["action"]},
                            "resource": {"S": entry["resource"]},
                            "outcome": {"S": entry["outcome"]},
                            "at": {"S": entry["at"]},
                            "linked_at": {"S": now},
                            "source": {"S": source},
                        },
                        "ConditionExpression": _ABSENT,
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                raise AlreadyLinked(source) from None
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[1:]):
                raise HeadMoved(f"{tenant}/{shard}") from None
            raise

    def register(self, tenant: str) -> None:
        """Note that `tenant` has a chain (the digest job's list); an insert, done once."""
        try:
            self.client.put_item(
                TableName=self._table,
                Item={"pk": {"S": TENANTS_PK}, "sk": {"S": tenant}, "since": {"S": clock.isoformat(clock.now())}},
                ConditionExpression=_ABSENT,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return

    def tenants(self) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": TENANTS_PK}},
        }
        while True:
            page = self.client.query(**kwargs)
            out.extend(item["sk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def lines(self, tenant: str, shard: int, *, after_seq: int, up_to_seq: int | None = None) -> Iterator[str]:
        """The chain's stored lines with seq in (after_seq, up_to_seq], in order, a page of up to 1 MB at a time."""
        high = sequence_key("SEQ", up_to_seq if up_to_seq is not None else 10**12 - 1)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": chain_pk(tenant, shard)},
                ":lo": {"S": sequence_key("SEQ", after_seq + 1)},
                ":hi": {"S": high},
            },
            "ProjectionExpression": "line",
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                yield item["line"]["S"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
