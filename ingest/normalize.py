"""From bytes as received to alerts: decode, unwrap envelopes, pick the parser by shape.

The sender never says which format it speaks, so the shape decides. Envelopes (SNS, Lambda
`Records`, Kinesis, awslogs) are peeled first; what is inside is parsed as if it had arrived
on its own, keeping the envelope's message id for idempotency. A batch is parsed item by item:
one unreadable item is rejected with its reason while the others go through.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from incidents.models import Alert
from ingest.parsers import alertmanager, cloudwatch_alarm, cloudwatch_logs, generic
from ingest.parsers.base import Envelope, NotAnAlertError, ParseError, text

MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALERTS_PER_PAYLOAD = 5000
# Envelopes that decode a string into a new document (SNS, SQS, Kinesis, awslogs) escape
# MAX_DEPTH, and compressed awslogs layers stay small: a 1 MiB body holds hundreds of them,
# enough to overflow the stack. Real deliveries nest three at most (SQS > SNS > message).
MAX_ENVELOPES = 8
_BINARY_CONTROL_RATIO = 0.1
# How a JSON array starts: `[{`, `[[`, `["`, `[]`, `[1,`, `[true]`, a lone `[`.
_JSON_ARRAY_START = re.compile(
    r'\[\s*(?:$|[\[{"\]]|(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)\s*(?:[,\]]|$))'
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A JSON escape that may spell a UTF-16 surrogate, and a surrogate left alone in a string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

Parser = Callable[[dict[str, Any], Envelope], list[Alert]]


@dataclass(frozen=True)
class Rejection:
    """A part of the payload that gave no alert, with why; `informational` when it was a
    well-formed message that simply is not an alert."""

    reason: str
    fragment: Any
    informational: bool = False


@dataclass
class ParseResult:
    alerts: list[Alert] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def decode(body: bytes) -> Any:
    """The payload as JSON, or as text when it is not JSON; ParseError when it is neither."""
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ParseError(f"payload is over the {MAX_PAYLOAD_BYTES} byte limit")
    if not body.strip():
        raise ParseError("empty payload")
    try:
        decoded = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"binary payload: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    sample = decoded[:4096]
    controls = len(_CONTROL_CHARS.findall(sample))
    if "\x00" in decoded or controls > _BINARY_CONTROL_RATIO * len(sample):
        raise ParseError("binary payload: control characters in what should be text")
    stripped = decoded.strip()
    if not stripped:
        raise ParseError("empty payload")  # a byte-order mark and nothing else
    try:
        value = json.loads(stripped)
    except RecursionError as exc:
        raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:
        if _is_broken_json(stripped, exc):
            raise ParseError(f"malformed JSON: {exc}") from exc
        return stripped
    if _depth_exceeds(value, MAX_DEPTH):
        raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return lossless(value, stripped)


def lossless(value: Any, source: str | None = None) -> Any:
    """`value` with every lone UTF-16 surrogate written back as its six-character escape.

    JSON can spell a surrogate alone (`\\ud83d`: a sender cutting an emoji in half). Python
    decodes it into a string that no UTF-8 text can hold, so it passes parsing and fails
    where the alert is serialised for the store, losing the payload and, before isolation,
    its whole batch. Done here, where JSON text enters the parsers, every field is safe and
    the text is kept as the sender spelled it. `source`, the JSON text, lets the common case
    (no surrogate escape in it) skip the walk. Call it after the depth check: it recurses."""
    if source is not None and _SURROGATE_ESCAPE.search(source) is None:
        return value
    return _escape_surrogates(value)


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value) is None:
            return value
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_surrogates(item) for item in value]
    return value


def _is_broken_json(body: str, error: ValueError) -> bool:
    """Truncated or broken JSON is refused, so its sender hears of it: anything that opens an
    object, and what opens like an array. Text that merely starts with a square bracket
    (`[ERROR] ...`, `[P1] DB down`, `[2024-01-02 03:04:05] ...`) is a log line or a message,
    and so is a bracketed value followed by prose (`[1] disk full`)."""
    if body.startswith("{"):
        return True
    if isinstance(error, json.JSONDecodeError) and error.msg == "Extra data":
        return False
    return _JSON_ARRAY_START.match(body) is not None


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def parse_body(body: bytes, received_at: datetime, message_id: str | None = None) -> ParseResult:
    """Bytes to alerts. Raises ParseError only when the body as a whole is unreadable.

    `message_id` is the transport's id of the delivery (an SQS MessageId): alerts with no
    identity of their own take it as their idempotency key, so a redelivery counts once."""
    result = ParseResult()
    envelope = Envelope(received_at=received_at, dedup_key=message_id)
    _parse_value(decode(body), envelope, result)
    if len(result.alerts) > MAX_ALERTS_PER_PAYLOAD:
        raise ParseError(
            f"payload holds {len(result.alerts)} alerts, over the limit of "
            f"{MAX_ALERTS_PER_PAYLOAD} per payload: split it"
        )
    return result


def parse_value(value: Any, envelope: Envelope) -> ParseResult:
    result = ParseResult()
    _parse_value(value, envelope, result)
    return result


def _parse_value(value: Any, envelope: Envelope, result: ParseResult) -> None:
    try:
        if sum(1 for via in envelope.via if via != "batch") > MAX_ENVELOPES:
            raise ParseError(f"envelopes nested deeper than {MAX_ENVELOPES} levels")
        if isinstance(value, list):
            if not value:
                raise ParseError("empty batch")
            for index, item in enumerate(value):
                item_envelope = envelope.inner(
                    "batch", f"{envelope.dedup_key}:{index}" if envelope.dedup_key else None
                )
                _parse_value(item, item_envelope, result)
            return
        if isinstance(value, dict):
            _parse_object(value, envelope, result)
            return
        if isinstance(value, str):
            _parse_string(value, envelope, result)
            return
        if value is None or isinstance(value, bool):
            raise ParseError(f"JSON {json.dumps(value)} is not an alert")
        result.alerts.extend(generic.parse_text(text(value), envelope))
    except NotAnAlertError as exc:
        result.rejections.append(Rejection(exc.reason, value, informational=True))
    except ParseError as exc:
        result.rejections.append(Rejection(exc.reason, value))


def _parse_string(body: str, envelope: Envelope, result: ParseResult) -> None:
    """A string inside an envelope may itself be JSON (an SNS Message, an SQS body)."""
    stripped = body.strip()
    if stripped[:1] in "{[":
        try:
            inner = json.loads(stripped)
        except (ValueError, RecursionError):
            inner = None
        if inner is not None and not _depth_exceeds(inner, MAX_DEPTH):
            _parse_value(lossless(inner, stripped), envelope, result)
            return
    result.alerts.extend(generic.parse_text(body, envelope))


def _parse_object(doc: dict[str, Any], envelope: Envelope, result: ParseResult) -> None:
    records = doc.get("Records")
    if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
        for record in records:
            _parse_record(record, envelope, result)
        return
    if _is_sns_envelope(doc):
        _parse_sns(doc, envelope, result)
        return
    awslogs = doc.get("awslogs")
    if isinstance(awslogs, dict) and "data" in awslogs:
        _parse_value(_logs_document(awslogs["data"]), envelope.inner("awslogs", None), result)
        return
    if alertmanager.is_alert_group(doc):
        _parse_group(doc, envelope, result)
        return
    result.alerts.extend(_parser_for(doc)(doc, envelope))


def _parse_group(doc: dict[str, Any], envelope: Envelope, result: ParseResult) -> None:
    """An Alertmanager or Grafana group, entry by entry: one unreadable entry is rejected
    with its reason and the others still become alerts."""
    group = alertmanager.group_of(doc)
    for index, entry in enumerate(doc["alerts"]):
        try:
            result.alerts.append(alertmanager.parse_entry(group, index, entry, envelope))
        except ParseError as exc:
            result.rejections.append(Rejection(exc.reason, entry))


def _parser_for(doc: dict[str, Any]) -> Parser:
    if cloudwatch_alarm.is_classic(doc):
        return cloudwatch_alarm.parse_classic
    if cloudwatch_alarm.is_lambda_action(doc):
        return cloudwatch_alarm.parse_lambda_action
    if cloudwatch_alarm.is_eventbridge(doc):
        return cloudwatch_alarm.parse_eventbridge
    if cloudwatch_logs.is_logs_data(doc):
        return cloudwatch_logs.parse
    if generic.is_custom(doc):
        return generic.parse_custom
    return generic.parse_json


def _logs_document(data: object) -> Any:
    """Decoded CloudWatch Logs data, held to the same depth limit as a body: it is a document
    of its own that `decode` never saw."""
    document = cloudwatch_logs.decode(data)
    if _depth_exceeds(document, MAX_DEPTH):
        raise ParseError(f"decoded CloudWatch Logs data nested deeper than {MAX_DEPTH} levels")
    return lossless(document)


def _is_sns_envelope(doc: dict[str, Any]) -> bool:
    return (
        isinstance(doc.get("Type"), str)
        and "MessageId" in doc
        and ("TopicArn" in doc or "Message" in doc)
    )


def _parse_sns(doc: dict[str, Any], envelope: Envelope, result: ParseResult) -> None:
    kind = doc.get("Type")
    if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise NotAnAlertError(
            f"SNS {kind} for {text(doc.get('TopicArn'), 256)}: confirm by visiting its "
            f"SubscribeURL ({text(doc.get('SubscribeURL'), 512)})"
        )
    if kind != "Notification":
        raise ParseError(f"SNS message of unknown type {text(kind, 64)!r}")
    inner = envelope.inner(
        "sns", f"sns:{text(doc.get('MessageId'), 128)}", text(doc.get("Subject"), 300) or None
    )
    message = doc.get("Message")
    if not isinstance(message, str):
        raise ParseError("SNS notification without a Message string")
    _parse_string(message, inner, result)


def _parse_record(record: dict[str, Any], envelope: Envelope, result: ParseResult) -> None:
    """Lambda-style event records: SNS, SQS (whose body may be an SNS envelope) and Kinesis."""
    try:
        sns = record.get("Sns")
        if isinstance(sns, dict):
            _parse_sns(sns, envelope, result)
            return
        if "body" in record and isinstance(record["body"], str):
            message_id = text(record.get("messageId"), 128)
            _parse_string(
                record["body"],
                envelope.inner("sqs", f"sqs:{message_id}" if message_id else None),
                result,
            )
            return
        kinesis = record.get("kinesis")
        if isinstance(kinesis, dict) and "data" in kinesis:
            inner = envelope.inner("kinesis", None)
            data = kinesis["data"]
            try:
                raw = base64.b64decode(str(data), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ParseError(f"Kinesis record data is not base64: {exc}") from exc
            if raw[:2] == b"\x1f\x8b":
                _parse_value(_logs_document(data), inner, result)
            else:
                _parse_string(raw.decode("utf-8", "replace"), inner, result)
            return
        result.alerts.extend(_parser_for(record)(record, envelope))
    except NotAnAlertError as exc:
        result.rejections.append(Rejection(exc.reason, record, informational=True))
    except ParseError as exc:
        result.rejections.append(Rejection(exc.reason, record))
