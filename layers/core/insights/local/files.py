"""The local cloud's buckets, S3 notifications and SQS event sources.

A mixin of LocalCloud, kept apart so the file-import plumbing does not
crowd the core. Buckets come from the template's AWS::S3::Bucket resources
(named by BucketName when it resolves, else the logical id in lower case).
Functions with `Type: S3` events get the bucket's ObjectCreated
notifications: moto sends them to an internal queue per subscription (with
the event's prefix/suffix filter rules), and pump_s3() delivers them shaped
as AWS does, with the sequencer moto leaves out. Functions with `Type: SQS`
events are fed by pump_sqs(), in batches, with partial-failure reports;
failed messages become visible again, so the queue's redrive policy moves
them to its dead-letter queue as on AWS.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus, urlsplit

from insights import clock
from insights.local import aws, s3post
from insights.local.gateway import HttpResponse
from insights.local.template import resolve

MAX_SQS_DELIVERIES_PER_PUMP = 10_000


@dataclass
class S3Subscription:
    function: str
    event: str
    bucket: str
    events: list[str]
    rules: list[dict[str, str]]
    queue_url: str = ""


@dataclass
class SqsSubscription:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool


class FileDelivery:
    # Provided by LocalCloud.
    template: Any
    deployment: Any
    sqs: Any
    s3_subscriptions: list[S3Subscription]
    sqs_subscriptions: list[SqsSubscription]
    s3_deliveries: list[dict[str, Any]]
    _sequencer: int
    own_clients: list[Any]

    def _lookup(self, name: str, attribute: str | None) -> Any: ...
    def invoke(self, function: str, event: dict[str, Any]) -> Any: ...
    def _on_error(self, text: str) -> None: ...

    # ---------------------------------------------------------------- setup
    def _configure_queues(self) -> None:
        """Queue attributes that matter locally: visibility and redrive."""
        for name, res in self.template.of_type("AWS::SQS::Queue").items():
            props = res.get("Properties", {})
            attributes: dict[str, str] = {}
            if "VisibilityTimeout" in props:
                attributes["VisibilityTimeout"] = str(props["VisibilityTimeout"])
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(
                    resolve(props["RedrivePolicy"], self._lookup)
                )
            if attributes:
                self.sqs.set_queue_attributes(
                    QueueUrl=self.deployment.queues[name], Attributes=attributes
                )

    def _create_buckets(self) -> None:
        self.s3 = aws.client("s3")
        self.own_clients.append(self.s3)  # the cloud's own calls are not a function's
        existing = {b["Name"] for b in self.s3.list_buckets().get("Buckets", [])}
        for name, res in self.template.of_type("AWS::S3::Bucket").items():
            props = res.get("Properties", {})
            bucket = (
                str(resolve(props["BucketName"], self._lookup))
                if props.get("BucketName")
                else name.lower()
            )
            if bucket not in existing:
                self.s3.create_bucket(Bucket=bucket)
            self.deployment.buckets[name] = bucket

    def _wire_s3(self, spec: Any, event_name: str, props: dict[str, Any]) -> None:
        bucket_ref = props["Bucket"]
        logical = bucket_ref["Ref"] if isinstance(bucket_ref, dict) else bucket_ref
        events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
        rules = props.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        self.s3_subscriptions.append(
            S3Subscription(spec.logical_id, event_name, logical, events, rules)
        )

    def _wire_sqs(self, spec: Any, props: dict[str, Any]) -> None:
        arn = str(resolve(props["Queue"], self._lookup))
        name = arn.rsplit(":", 1)[1]
        self.sqs_subscriptions.append(
            SqsSubscription(
                function=spec.logical_id,
                queue_url=self.deployment.queues[name],
                queue_arn=arn,
                batch_size=min(10, int(props.get("BatchSize", 10))),
                report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            )
        )

    def _wire_bucket_notifications(self) -> None:
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for sub in self.s3_subscriptions:
            queue_name = f"local-s3-{sub.function}-{sub.event}"
            sub.queue_url = self.sqs.create_queue(QueueName=queue_name)["QueueUrl"]
            config: dict[str, Any] = {
                "Id": f"{sub.function}-{sub.event}",
                "QueueArn": f"arn:aws:sqs:{os.environ.get('AWS_REGION', 'us-east-1')}:"
                f"{self._lookup('AWS::AccountId', None)}:{queue_name}",
                "Events": sub.events,
            }
            if sub.rules:
                config["Filter"] = {
                    "Key": {
                        "FilterRules": [
                            {"Name": r["Name"].lower(), "Value": r["Value"]} for r in sub.rules
                        ]
                    }
                }
            by_bucket.setdefault(self.deployment.buckets[sub.bucket], []).append(config)
        for bucket, configs in by_bucket.items():
            self.s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
            )
        for sub in self.s3_subscriptions:  # drop the s3:TestEvent moto sends on configuration
            self._drain(sub.queue_url)

    def _drain(self, url: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    # ------------------------------------------------------------ delivery
    def pump_s3(self) -> int:
        """Deliver the S3 notifications of every object created so far."""
        delivered = 0
        for sub in self.s3_subscriptions:
            for body in self._drain(sub.queue_url):
                for record in body.get("Records", []):
                    event = {"Records": [self._as_s3_record(record)]}
                    self.s3_deliveries.append(event)
                    delivered += 1
                    try:
                        self.invoke(sub.function, event)
                    except Exception:
                        self._on_error(
                            f"{sub.function} failed on an S3 notification:\n"
                            + traceback.format_exc()
                        )
        return delivered

    def _as_s3_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """moto's record, completed to what S3 sends (a sequencer; '/' not encoded)."""
        self._sequencer += 1
        s3 = record["s3"]
        key = quote_plus(unquote_plus(s3["object"]["key"]), safe="/")
        return {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": record.get("awsRegion"),
            "eventTime": time.strftime(
                "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(clock.now_ms() / 1000)
            ),
            "eventName": record["eventName"],
            "userIdentity": {"principalId": "AWS:LOCAL"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": uuidlib.uuid4().hex[:16].upper(),
                "x-amz-id-2": uuidlib.uuid4().hex,
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": s3.get("configurationId"),
                "bucket": {
                    "name": s3["bucket"]["name"],
                    "ownerIdentity": {"principalId": "LOCAL"},
                    "arn": s3["bucket"]["arn"],
                },
                "object": {
                    "key": key,
                    "size": s3["object"]["size"],
                    "eTag": s3["object"]["eTag"],
                    "sequencer": f"{self._sequencer:018X}",
                },
            },
        }

    def pump_sqs(self) -> int:
        """Feed queued messages to their functions until the queues are empty."""
        delivered = 0
        for sub in self.sqs_subscriptions:
            while delivered < MAX_SQS_DELIVERIES_PER_PUMP:
                page = self.sqs.receive_message(
                    QueueUrl=sub.queue_url,
                    MaxNumberOfMessages=sub.batch_size,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages = page.get("Messages", [])
                if not messages:
                    break
                delivered += len(messages)
                failed = self._deliver_sqs(sub, messages)
                for message in messages:
                    if message["MessageId"] in failed:
                        self.sqs.change_message_visibility(
                            QueueUrl=sub.queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=0,
                        )
                    else:
                        self.sqs.delete_message(
                            QueueUrl=sub.queue_url, ReceiptHandle=message["ReceiptHandle"]
                        )
        return delivered

    def _deliver_sqs(self, sub: SqsSubscription, messages: list[dict[str, Any]]) -> set[str]:
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": sub.queue_arn,
                "awsRegion": sub.queue_arn.split(":")[3],
            }
            for m in messages
        ]
        everyone = {m["MessageId"] for m in messages}
        try:
            result = self.invoke(sub.function, {"Records": records})
        except Exception:
            self._on_error(
                f"{sub.function} failed on {len(records)} SQS messages:\n{traceback.format_exc()}"
            )
            return everyone
        if not sub.report_failures:
            return set()
        return {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures") or []}

    # ------------------------------------------------------- form uploads
    def post_object(
        self, url: str, fields: dict[str, str], data: bytes, filename: str = "file"
    ) -> HttpResponse:
        """A browser-style form upload (presigned POST), with S3's policy checks.

        moto accepts any form; S3 checks the signed policy. This does what
        S3 does before handing the upload to moto.
        """
        import requests

        parts = urlsplit(url)
        host_bucket = parts.hostname.split(".s3", 1)[0] if parts.hostname else ""
        bucket = (
            host_bucket
            if parts.hostname and ".s3" in parts.hostname
            else parts.path.strip("/").split("/", 1)[0]
        )
        problem = s3post.check(
            fields,
            size=len(data),
            bucket=bucket,
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        )
        if problem is not None:
            return HttpResponse(403, {"content-type": "application/xml"}, problem)
        response = requests.post(url, data=fields, files={"file": (filename, data)}, timeout=60)
        return HttpResponse(response.status_code, dict(response.headers), response.text)
