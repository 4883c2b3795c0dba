"""The hourly digest job (a schedule starts it a few minutes after each hour): for every tenant with a chain,
the signed digest of each whole period not yet digested (functions/audit/logic/digests.py), and the signing key's
public half published beside the digests."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from shared import clock
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class DigestSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)
    AUDIT_SIGNING_KEY_ARN: str = Field(min_length=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The proof format (pydantic models, cryptography) is imported by the run, not the cold start: an hourly job.
    from functions.audit.dal.chain import DynamoChainStore
    from functions.audit.dal.digests import KmsDigestSigner, S3DynamoDigestStore
    from functions.audit.logic.digests import write_digests

    settings = load_settings(DigestSettings)
    chain = DynamoChainStore(settings.AUDIT_TABLE_NAME)
    store = S3DynamoDigestStore(settings.AUDIT_TABLE_NAME, settings.EXPORT_BUCKET_NAME)
    signer = KmsDigestSigner(settings.AUDIT_SIGNING_KEY_ARN)
    public_key = store.publish_public_key(signer.key_id, signer.public_key_pem())
    now = clock.now()
    written: dict[str, list[str]] = {}
    for tenant in chain.tenants():
        written[tenant] = write_digests(tenant, now, chain=chain, store=store, signer=signer)
    metrics.add_metric(name="AuditDigestsWritten", unit="Count", value=sum(len(v) for v in written.values()))
    return {"public_key": public_key, "digests": written}
