"""Encrypted SQS queues: TLS only, the environment's key, two weeks to investigate."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

RETENTION = cdk.Duration.days(14)


def encrypted_queue(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    visibility_timeout: cdk.Duration | None = None,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
) -> sqs.Queue:
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        # Reusing a data key for an hour keeps KMS calls (and cost) down at high rates.
        data_key_reuse=cdk.Duration.hours(1),
        enforce_ssl=True,
        retention_period=RETENTION,
        visibility_timeout=visibility_timeout,
        dead_letter_queue=dead_letter_queue,
    )
