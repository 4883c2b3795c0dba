"""The standard consumer of another domain's events: EventBridge rule -> SQS queue (with DLQ) -> this.

Each SQS message body is an EventBridge event whose detail is a typed DomainEvent. Powertools' BatchProcessor
(EventType.SQS) validates every record with a parser model built from the event classes the consumer accepts,
then calls the domain's function with the typed event and the system actor of the job. A record that fails
validation or whose function raises is reported in `batchItemFailures` (it returns to the queue and, after
the queue's maxReceiveCount, to its DLQ); the others are settled. A handler module is three lines:

    consumer = EventConsumer(OfferAccepted, assign_assets, job="assets.assign-on-offer")

    @logger.inject_lambda_context
    @metrics.log_metrics
    def lambda_handler(event, context):
        return consumer(event, context)

Nothing here imports Powertools' batch or parser modules until the first batch arrives (cold start).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, Union

from shared.errors import ConfigurationError
from shared.events import DomainEvent
from shared.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
    from pydantic import BaseModel

    from shared.auth import Actor

E = TypeVar("E", bound=DomainEvent)
ActorFactory = Callable[[str, str], "Actor"]


def system_actor(job: str, tenant: str) -> Actor:
    """`shared.auth.Actor.system(job, tenant)`, imported on first use."""
    from shared.auth import Actor

    return Actor.system(job, tenant)


class EventConsumer(Generic[E]):
    """Consumes SQS batches of EventBridge events of the given DomainEvent classes, with partial failures.

    `handle(event, actor)` is called once per record, `actor` being the system actor of `job` in the event's
    tenant. `sources` (e.g. {"ats.messages"}) refuses events from any other source, should a rule be too wide.
    """

    def __init__(
        self,
        events: type[E] | Sequence[type[E]],
        handle: Callable[[E, Actor], object],
        *,
        job: str,
        sources: Collection[str] | None = None,
        actor: ActorFactory | None = None,
    ) -> None:
        classes = [events] if isinstance(events, type) else list(events)
        if not classes:
            raise ConfigurationError("an EventConsumer needs at least one event class")
        for cls in classes:
            if "detail_type" not in vars(cls):
                raise ConfigurationError(f"{cls.__name__} declares no detail_type: it cannot be consumed")
        if len({cls.detail_type for cls in classes}) != len(classes):
            raise ConfigurationError("two event classes of one consumer share a detail_type")
        self._classes = classes
        self._handle = handle
        self._job = job
        self._sources = frozenset(sources) if sources is not None else None
        self._actor = actor or system_actor
        self._processor: BatchProcessor | None = None

    @property
    def processor(self) -> BatchProcessor:
        if self._processor is None:
            from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

            self._processor = BatchProcessor(
                event_type=EventType.SQS,
                model=record_model(self._classes),
                # A batch where every record failed is answered like any other: each record is reported.
                raise_on_entire_batch_failure=False,
            )
        return self._processor

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Process one SQS event; the partial batch response lists the message ids to retry."""
        from aws_lambda_powertools.utilities.batch import process_partial_response

        processor = self.processor
        response: dict[str, Any] = dict(
            process_partial_response(event=event, record_handler=self._record, processor=processor, context=context)
        )
        for record, (error, _, _) in zip(processor.fail_messages, processor.exceptions, strict=False):
            # Identifiers and the error type only: a record body or a validation message may hold input.
            logger.warning(
                "event not consumed; it returns to the queue",
                extra={
                    "message_id": getattr(record, "message_id", None) or getattr(record, "messageId", None),
                    "job": self._job,
                    "error_type": getattr(error, "__name__", str(error)),
                },
            )
        return response

    def _record(self, record: Any) -> None:
        envelope = record.body
        if self._sources is not None and envelope.source not in self._sources:
            raise ValueError(f"events from source {envelope.source} are not consumed here")
        event: E = envelope.detail
        self._handle(event, self._actor(self._job, event.tenant))


def record_model(classes: Sequence[type[DomainEvent]]) -> type[SqsRecordModel]:
    """The parser model of one SQS record whose body is the EventBridge event of one of `classes`."""
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsRecordModel
    from pydantic import ConfigDict, Field, Json, create_model

    literal: Any = Literal
    envelopes: list[type[BaseModel]] = [
        create_model(
            f"{cls.__name__}EventBridgeEvent",
            __base__=EventBridgeModel,
            detail_type=(literal[cls.detail_type], Field(alias="detail-type")),
            detail=(cls, ...),
            # moto's EventBridge (the local runtime) leaves `account` out of the events it delivers to SQS;
            # nothing here reads it, so its absence is no reason to refuse the event.
            account=(str | None, None),
        )
        for cls in classes
    ]
    body: Any = (
        envelopes[0] if len(envelopes) == 1 else Annotated[Union[tuple(envelopes)], Field(discriminator="detail_type")]  # noqa: UP007
    )

    class _QuietSqsRecord(SqsRecordModel):
        # Validation errors would otherwise carry the record body into logs.
        model_config = ConfigDict(hide_input_in_errors=True)

    name = "Consumed" + "Or".join(cls.__name__ for cls in classes) + "Record"
    json_of: Any = Json
    model: type[SqsRecordModel] = create_model(name, __base__=_QuietSqsRecord, body=(json_of[body], ...))
    return model
