"""Fingerprints: the same problem gets the same key however its volatile parts vary.

Alarms and labelled alerts have an identity of their own (account, region and name; the label
set) and key on it. Log lines and free text have none, so they key on their template: the text
with every volatile part (ids, numbers, times, addresses, quoted values...) replaced by a
placeholder. The masking is ours rather than drain3's; see docs/fingerprints.md for the
measurement that chose it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable

FINGERPRINT_LENGTH = 16
TEMPLATE_LINES = 3
TEMPLATE_CHARS = 400

_KEEP_WORDS = frozenset(
    "ec2 s3 http2 http/2 http/1.1 ipv4 ipv6 utf8 utf-8 utf16 k8s log4j oauth2 sha1 sha256 sha512 "
    "md5 base64 x509 tls1.2 tls1.3 e2e i18n 2fa arm64 x86 x86_64 amd64 gp2 gp3 io1 io2 "
    "4xx 5xx 2xx 3xx route53 elbv2 dynamodb2 py3 python3 v1 v2 v3 api2".split()
)

_Sub = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]


def _keep_or_mask(match: re.Match[str]) -> str:
    token = match.group(0)
    return token if token.lower() in _KEEP_WORDS else "<*>"


def _mask_url(match: re.Match[str]) -> str:
    scheme, host, rest = match.group(1), match.group(2), match.group(3) or ""
    path = rest.split("?", 1)[0].split("#", 1)[0]
    segments = ["<*>" if re.search(r"\d", s) or len(s) > 40 else s for s in path.split("/")]
    return f"{scheme}://{_mask_host(host)}{'/'.join(segments)}"


def _mask_host(host: str) -> str:
    return "<ip>" if re.fullmatch(r"[\d.:\[\]]+", host) else re.sub(r":\d+$", ":<port>", host)


_MASKS: list[_Sub] = [
    (re.compile(r"(https?|wss?|s3|ftp)://([^/\s\"'<>]+)([^\s\"'<>]*)"), _mask_url),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<ts>",
    ),
    (re.compile(r"\b\d{1,4}[-/]\d{1,2}[-/]\d{1,4}\b"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b"), "<ip>"),
    (re.compile(r"\barn:aws[\w-]*:[\w-]+:[\w-]*:\d*:[^\s\"',]+"), "<arn>"),
    (re.compile(r"\"[^\"\n]{0,200}\"|'[^'\n]{0,200}'|`[^`\n]{0,200}`"), "<quoted>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (
        re.compile(
            r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ms|us|µs|ns|s|sec|secs|seconds?|m|mins?|minutes?|h|hrs?"
            r"|hours?|d|days?)\b"
        ),
        "<dur>",
    ),
    (re.compile(r"(?<![\w<])[\w.:/-]*\d[\w.:/-]*"), _keep_or_mask),
    (re.compile(r"\s+"), " "),
]

_JSON_MESSAGE_KEYS = (
    "message",
    "msg",
    "error",
    "errorMessage",
    "error_message",
    "err",
    "exception",
    "event",
    "eventName",
    "reason",
)
_JSON_LEVEL_KEYS = ("level", "severity", "levelname", "log_level", "lvl")


def template(text: str) -> str:
    """The text with its volatile parts masked: `timeout after 30s on 10.0.0.7` becomes
    `timeout after <dur> on <ip>`. Only the first lines count, because that is where log
    lines and exceptions say what went wrong; the rest is stack and payload."""
    head = _head(_structured_summary(text) or text)
    for pattern, replacement in _MASKS:
        head = pattern.sub(replacement, head)
    return head.strip()


def _head(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:TEMPLATE_LINES])[:TEMPLATE_CHARS]


def _structured_summary(text: str) -> str | None:
    """A JSON log line keys on its level and message, or on its shape when it has no message:
    masking its raw text would turn every key and value into the same placeholder."""
    stripped = text.strip()
    if not stripped.startswith("{") or len(stripped) > 65536:
        return None
    try:
        document = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    level = next((str(document[k]) for k in _JSON_LEVEL_KEYS if k in document), "")
    for key in _JSON_MESSAGE_KEYS:
        value = document.get(key)
        if isinstance(value, str) and value.strip():
            return f"{level} {value}".strip()
        if isinstance(value, dict):
            return f"{level} {key} " + " ".join(sorted(str(k) for k in value))
    return "{" + ",".join(sorted(str(k) for k in document)) + "}"


def digest(*parts: str) -> str:
    """A short stable hash of the parts; the separator cannot occur inside a part."""
    joined = "\x1f".join(part.lower().strip() for part in parts)
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()[:FINGERPRINT_LENGTH]


def of_identity(kind: str, *identity: str) -> str:
    """For alerts that name themselves: an alarm's ARN parts, a label set."""
    return digest(kind, *identity)


def of_text(kind: str, scope: str, *texts: str) -> str:
    """For alerts that only describe themselves: the templates of their texts, within a scope
    (a log group, a source) so that one message in two services is two problems."""
    return digest(kind, scope, *(template(t) for t in texts))


def of_labels(kind: str, labels: dict[str, str]) -> str:
    """A label set is an alert's identity in Prometheus and Grafana; sorted, so order is moot."""
    return digest(kind, *(f"{k}={v}" for k, v in sorted(labels.items())))
