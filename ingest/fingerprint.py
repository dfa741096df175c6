"""Fingerprints: the same problem gets the same key however its volatile parts vary.

Alarms and labelled alerts have an identity of their own (account, region and name; the label
set) and key on it. Log lines and free text have none, so they key on their template: the text
with every volatile part (ids, numbers, times, addresses, data in quotes...) replaced by a
placeholder, and every part that names the problem (the error, the component, a table, a bucket,
a mount point, an HTTP status) kept. The masking is ours rather than drain3's; see
docs/fingerprints.md for the measurement that chose it and for the rules in prose.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import NamedTuple

from ingest.variables import generalise

FINGERPRINT_LENGTH = 16
TEMPLATE_LINES = 3
LINE_CHARS = 2000
TEMPLATE_CHARS = 400
JSON_CHARS = 65536

_KEEP_WORDS = frozenset(
    "ec2 s3 http2 http/2 http/1.1 http/1.0 ipv4 ipv6 utf8 utf-8 utf16 k8s log4j oauth2 sha1 sha256 "
    "sha512 md5 base64 x509 e2e i18n 2fa arm64 x86 x86_64 amd64 gp2 gp3 io1 io2 4xx 5xx 2xx 3xx "
    "route53 elbv2 dynamodb2 py3 python3 v1 v2 v3 api2".split()
)

_POD_HASH = "[bcdfghjklmnpqrstvwxz2456789]"
_DURATION_UNIT = r"(?:ms|us|µs|ns|s|sec|secs|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

# A quoted value right after one of these words names a thing (a table, a module, a host, the
# key of `KeyError: 'x'`) whose identity is the problem; any other quoted single token is data.
_NAMING = re.compile(
    r"\b(?:(?i:relation|table|column|constraint|index|database|schema|sequence|function|"
    r"extension|role|attribute|module|named|name|package|class|method|property|field|reading|"
    r"invoke|host|hostname|resource|bucket|queue|topic|stream|image|container|deployment|service|"
    r"namespace|alarm|file)|\w+(?:Error|Exception))\s?[:=]?\s?$"
)
# A small number right after these is a category, not a count: an HTTP status (`status: 502`,
# `HTTP/1.1" 504`, an ALB line's status after its three timings), an exit code, an error code.
_CODE_CONTEXT = re.compile(
    r"(?:(?i:\b(?:status(?:[ _-]?code)?|http(?:/\d(?:\.\d)?)?|code)\"?\s?[:=]?\s?)"
    r"|\bexit(?:ed)?(?: with)?(?: code| status)?[:= ]\s?|(?:(?:-1|\d+\.\d+) ){3})$"
)
_REGION = re.compile(
    r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?"
    r"-(?:north|south|east|west|central)(?:east|west)?-$"
)
_USER_AGENT = re.compile(r"[\w.-]+/\d")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_DIGIT_PART = re.compile(r"[^-_./:#]*\d[^-_./:#]*")

_Replacement = str | Callable[[re.Match[str]], str]


def _mask_url(match: re.Match[str]) -> str:
    """The query and fragment are request data and go; path segments too long to be a route
    (tokens, signatures) are masked. Digits in the host or path are left to the token pass."""
    scheme, host, rest = match.group(1), match.group(2), match.group(3) or ""
    path = rest.split("?", 1)[0].split("#", 1)[0]
    segments = ["<*>" if len(s) > 40 else s for s in path.split("/")]
    return f"{scheme}://{host}{'/'.join(segments)}"


def _mask_arn(match: re.Match[str]) -> str:
    """An ARN names a resource: its service, region and resource name stay, the account goes,
    and so does what AWS adds to the name as data (an S3 object key, the session of an assumed
    role, the random suffix of a secret)."""
    partition, service, region, account, resource = match.groups()
    if service == "s3" and "/" in resource:
        resource = resource.split("/", 1)[0] + "/<*>"
    elif service == "sts" and resource.count("/") >= 2:
        resource = "/".join(resource.split("/")[:2]) + "/<*>"
    elif service == "secretsmanager":
        resource = re.sub(r"-[A-Za-z0-9]{6}$", "-<*>", resource)
    return f"arn:{partition}:{service}:{region}:{'<*>' if account else ''}:{resource}"


def _mask_quoted(match: re.Match[str]) -> str:
    """A quoted single token is data (`user 'bob'`, `input "abc"`) unless the word before says it
    names something; a quoted phrase is a nested message (`(1040, 'Too many connections')`, a
    request line) and keeps its words, its own volatile parts being masked like any other. A URL
    or ARN has been reduced to its resource already, so it stays. User agents are phrases that
    vary with every client, so they go."""
    quoted = match.group(0)
    inner = quoted[1:-1]
    start = match.start()
    if _NAMING.search(match.string[max(0, start - 40) : start]):
        return quoted
    if "://" in inner[:12] or inner.startswith("arn:"):
        return quoted
    if any(c.isspace() for c in inner) and not _USER_AGENT.match(inner):
        return quoted
    return "<*>"


def _mask_quantity(match: re.Match[str]) -> str:
    """`512 MB` and `1.5GB` are one size, `30s`, `30 seconds` and `1m30s` one duration."""
    return "<size>" if match.group("size") else "<dur>"


def _mask_token(match: re.Match[str]) -> str:
    """Numbers go whole; a word with digits in it keeps its parts without digits, so that
    `orders-api-7d4b9c6f5` still says `orders-api` and `OrderService.java:142` its file. A small
    number after a status or exit context says what went wrong, so it stays."""
    token = match.group(0)
    if token.lower() in _KEEP_WORDS:
        return token
    if token.isdigit() and len(token) <= 3:
        start = match.start()
        if _CODE_CONTEXT.search(match.string, max(0, start - 32), start):
            return token
    if _NUMBER.fullmatch(token):
        return "<*>"
    return _DIGIT_PART.sub(_mask_part, token)


def _mask_part(match: re.Match[str]) -> str:
    """One digit-bearing part of a token: masked, unless a name like `ec2` or `s3`, or the digit
    that ends an AWS region (`us-east-1` and `us-east-2` are two places for a problem to be)."""
    part = match.group(0)
    if part.lower() in _KEEP_WORDS:
        return part
    if part.isdigit() and _REGION.search(match.string, max(0, match.start() - 24), match.start()):
        return part
    return "<*>"


# In order: each mask sees what the ones before left. The hints are lower-case substrings at
# least one of which the line must contain for the mask to run at all: most masks find nothing
# in most lines, and a substring test costs far less than a regex scan. None means always run.
_MASKS: list[tuple[tuple[str, ...] | None, re.Pattern[str], _Replacement]] = [
    (("://",), re.compile(r"\b(https?|wss?|s3|ftp)://([^/\s\"'<>]+)([^\s\"'<>]*)"), _mask_url),
    (("?",), re.compile(r"(?<=[\w/])\?[\w.%~+-]+=[^\s\"'<>]*"), ""),
    (
        ("http/",),
        re.compile(r"(HTTP/\d(?:\.\d)?\" [1-5]\d\d) (?:\d+|-) \"[^\"]*\" \"[^\"]*\""),
        r"\1 <*> <*> <*>",
    ),
    (
        None,
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
            r"(?:\s?(?:Z|UTC|GMT)\b|[+-]\d{2}:?\d{2})?"
        ),
        "<ts>",
    ),
    (
        _MONTHS,
        re.compile(
            r"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?(?:\d{1,2}[\s/-]+)?"
            r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*[\s/-]+\d{1,4}"
            r"(?:[\s,/:]+\d{1,4})*(?:\.\d+)?(?:\s+(?:GMT|UTC|[+-]\d{4})\b)?(?:\s+\d{4}\b)?"
        ),
        "<ts>",
    ),
    (
        None,
        re.compile(
            r"(?<![\w-])(?:\d{4}[-/]\d{1,2}[-/]\d{1,2}|\d{1,2}[-/]\d{1,2}[-/]\d{4})(?![\w-])"
        ),
        "<date>",
    ),
    ((":",), re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (
        ("-",),
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (
        ("-",),
        re.compile(rf"(?<=[a-z0-9])-{_POD_HASH}{{6,10}}-{_POD_HASH}{{5}}(?![a-z0-9])"),
        "-<pod>",
    ),
    (("@",), re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>"),
    (
        ("arn:",),
        re.compile(r"\barn:(aws[\w-]*):([\w-]+):([\w-]*):(\d*):([^\s\"',]+)"),
        _mask_arn,
    ),
    ((".",), re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), "<ip>"),
    (("user",), re.compile(r"(?i)\b((?:for|invalid) user )[\w.@-]+"), r"\1<*>"),
    # Who, from where: `Failed password for root from <ip>`, `Accepted publickey for deploy
    # from <ip>`. A user or client name is data, like the address after it.
    (("for ",), re.compile(r"\b(for )(?!user\b|invalid\b)[\w.@-]+( from <ip>)"), r"\1<*>\2"),
    (
        (":",),
        re.compile(
            r"\b(?=[\da-fA-F]{0,4}:[\da-fA-F]{0,4}:)(?=[\da-fA-F:]{0,38}\d)"
            r"[\da-fA-F]{1,4}(?::[\da-fA-F]{0,4}){2,7}\b"
        ),
        "<ip>",
    ),
    (
        ("id",),
        re.compile(
            r"(?P<key>(?<=[a-z])I[dD]|(?<![A-Za-z0-9])(?:id|ID|Id))"
            r"(?P<sep>[\"']?\s?[:=]\s?[\"']?)(?!<)[^\s,;)\]}\"']+"
        ),
        r"\g<key>\g<sep><id>",
    ),
    (
        ('"', "'", "`"),
        re.compile(r"\"[^\"\n]{0,300}\"|'[^'\n]{0,300}'|`[^`\n]{0,300}`"),
        _mask_quoted,
    ),
    (
        (".",),
        re.compile(r"(?<![\w.])v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?![\w.])"),
        "<version>",
    ),
    (
        None,
        re.compile(
            rf"(?<![\w.])\d+(?:\.\d+)?\s?(?:(?P<size>[kKMGTP]i?B|[KMGTP]i|bytes?)"
            rf"|{_DURATION_UNIT}(?:\d+(?:\.\d+)?{_DURATION_UNIT})*)\b"
        ),
        _mask_quantity,
    ),
    (None, re.compile(r"(?<![\w.:/#<-])[A-Za-z_.:/#-]*+\d[\w.:/#-]*"), _mask_token),
    (("  ", "\t", "\r", "\xa0"), re.compile(r"\s+"), " "),
]

_JSON_LEVEL_KEYS = ("level", "severity", "levelname", "log_level", "lvl")
_JSON_MESSAGE_KEYS = (
    "message",
    "msg",
    "errorMessage",
    "error_message",
    "event",
    "eventName",
    "description",
)
_JSON_CAUSE_KEYS = ("errorType", "error", "err", "exception", "reason", "error_type")
_JSON_ERROR_PARTS = ("type", "name", "kind", "code", "message", "msg")
_JSON_DECODER = json.JSONDecoder()
_TRACEBACK = "Traceback (most recent call last):"
_GOROUTINE = re.compile(r"goroutine \d+ \[")


def template(text: str) -> str:
    """The text with its volatile parts masked: `timeout after 30s on 10.0.0.7` becomes
    `timeout after <*> on <*>`. Only the first lines count, because that is where log lines
    and exceptions say what went wrong, plus the innermost cause of a chained exception, because
    that is where they say why; the rest is stack and payload."""
    masked = []
    for line in _head(_structured_summary(text) or text):
        lowered = line.lower()
        for hints, pattern, replacement in _MASKS:
            if hints is None or any(hint in lowered for hint in hints):
                line = pattern.sub(replacement, line)
        masked.append(generalise(line, _KEEP_WORDS)[:TEMPLATE_CHARS])
    return "\n".join(masked)


def _head(text: str) -> list[str]:
    """The first lines, not counting a Go panic's `goroutine 7 [running]:` header, so that a
    panic keys on its function as a Java exception does on its top frame."""
    lines = [line for line in text.splitlines() if line.strip() and not _GOROUTINE.match(line)]
    head = [line.strip()[:LINE_CHARS] for line in lines[:TEMPLATE_LINES]]
    cause = _innermost_cause(text, lines)
    if cause and cause not in head:
        head.append(cause[:LINE_CHARS])
    return head


def _innermost_cause(text: str, lines: list[str]) -> str | None:
    """The last `Caused by:` of a Java trace, or the exception line that ends a Python
    traceback: the same log message over two different root causes is two problems."""
    if "Caused by:" in text:
        causes = (
            line.strip() for line in reversed(lines) if line.lstrip().startswith("Caused by:")
        )
        return next(causes, None)
    if _TRACEBACK in text:
        return next((line.strip() for line in reversed(lines) if not line[:1].isspace()), None)
    return None


def _structured_summary(text: str) -> str | None:
    """A JSON log line keys on its level, message and error, or on its shape when it has none:
    masking its raw text would turn every key and value into the same placeholder. JSON after a
    plain prefix (Lambda's Node.js `Invoke Error` lines) is read the same way, prefix kept."""
    text = text.lstrip()
    start = text.find("{")
    if start < 0 or start >= LINE_CHARS or "\n" in text[:start]:
        return None
    try:
        document, end = _JSON_DECODER.raw_decode(text[: start + JSON_CHARS], start)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    rest = text[end:].strip()
    return " ".join(part for part in (text[:start].strip(), _summarize(document), rest) if part)


def _summarize(document: dict[str, object]) -> str:
    level = next((str(document[k]) for k in _JSON_LEVEL_KEYS if k in document), "")
    message = next((_describe(document[k]) for k in _JSON_MESSAGE_KEYS if document.get(k)), "")
    cause = next((_describe(document[k]) for k in _JSON_CAUSE_KEYS if document.get(k)), "")
    if not message and not cause:
        return "{" + ",".join(sorted(str(k) for k in document)) + "}"
    return " ".join(part for part in (level, message, cause if cause != message else "") if part)


def _describe(value: object) -> str:
    """A message or error as text; an error object by its type and message (pino's `err`,
    ECS's `error`), any other object by its keys."""
    if isinstance(value, dict):
        parts = [str(value[k]) for k in _JSON_ERROR_PARTS if isinstance(value.get(k), str | int)]
        return " ".join(parts) or " ".join(sorted(str(k) for k in value))
    return value if isinstance(value, str) else json.dumps(value, default=str)[:TEMPLATE_CHARS]


def digest(*parts: str) -> str:
    """A short stable hash of the parts; the separator cannot occur inside a part."""
    joined = "\x1f".join(part.lower().strip() for part in parts)
    return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()[:FINGERPRINT_LENGTH]


def of_identity(kind: str, *identity: str) -> str:
    """For alerts that name themselves: an alarm's ARN parts, a label set."""
    return digest(kind, *identity)


class TextKey(NamedTuple):
    """A fingerprint keyed on text, with the template it keys on: what an on-call engineer
    reads to see why two lines were grouped."""

    fingerprint: str
    template: str


def text_key(kind: str, scope: str, *texts: str) -> TextKey:
    """For alerts that only describe themselves: the templates of their texts, within a scope
    (a log group, a source) so that one message in two services is two problems."""
    templates = [template(t) for t in texts]
    return TextKey(digest(kind, scope, *templates), "\n".join(t for t in templates if t))


def of_text(kind: str, scope: str, *texts: str) -> str:
    return text_key(kind, scope, *texts).fingerprint


def of_labels(kind: str, labels: dict[str, str]) -> str:
    """A label set is an alert's identity in Prometheus and Grafana; sorted, so order is moot.
    Names and values are parts of their own: with UTF-8 label names a `k=v` join is ambiguous."""
    return digest(kind, *(part for pair in sorted(labels.items()) for part in pair))
