"""Redaction: secrets and personal data never leave the process.

Everything sent to Claude (alert payloads, log lines, metric context, thread questions) passes
through `redact` or `redact_json` first. A secret becomes a marker naming its kind,
`[REDACTED:aws_access_key]`, rather than an empty string: the model still reads "an access key
was logged here", so an incident about a leaked or expired credential stays explainable.

How it works, and why:

- One ordered list of rules. Secrets with a recognisable shape (private key blocks, JWTs, AWS,
  Slack, GitHub, Stripe, Anthropic, OpenAI and Google keys) go first, so the marker names the
  most precise kind; secrets known only by where they sit (`Authorization:`, URL credentials,
  `Cookie:`, `password=` and friends) come next; e-mail addresses, and IP addresses when asked
  for, last.
- A rule never rewrites a marker, and `redact` repeats its pass until the text stops changing.
  A replacement can give a neighbour the boundary it lacked (an address glued to a key), so one
  pass is not always a fixed point; repeating makes the result idempotent and never weaker.
- Speed (it runs on every analysis): every pattern starts with a literal, so the regex engine
  jumps to candidates instead of trying each position. Boundary checks are lookbehinds placed
  after that literal, and a part that precedes it (the local part of an address) is found by
  scanning back. Case-insensitive rules match an ASCII-lower-cased copy of the same length and
  splice the original, because `(?i)` would disable that jump. A clean 10 KB text takes about
  0.1 ms.
- Left alone on purpose, because the analysis needs them and they grant nothing: ARNs and
  account ids, request ids, UUIDs, git SHAs, hostnames, paths, pagination and idempotency
  tokens. docs/redaction.md lists the kinds, the exceptions and the reasons.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from analysis.secret_formats import CONTEXT_FORMATS, FORMATS, merged
from analysis.secret_formats import KINDS as FORMAT_KINDS
from analysis.secret_values import looks_random

KINDS: Final = FORMAT_KINDS | frozenset(
    {
        "private_key",
        "jwt",
        "aws_access_key",
        "aws_secret_key",
        "aws_session_token",
        "slack_token",
        "slack_webhook",
        "github_token",
        "stripe_key",
        "anthropic_key",
        "openai_key",
        "google_api_key",
        "bearer",
        "basic_auth",
        "authorization",
        "url_password",
        "dsn_password",
        "cookie",
        "session_id",
        "password",
        "secret",
        "api_key",
        "token",
        "azure_storage_key",
        "credential",
        "email",
        "ip",
    }
)
"""Every kind a marker can name: `[REDACTED:<kind>]`."""

_MAX_PASSES = 4
"""A pass that changes the text is followed by one that checks it; a third is rare."""

_MARKER = re.compile(r"\[REDACTED:[a-z0-9_]+\]")
_MARKER_AT_END = re.compile(r"\[REDACTED:[a-z0-9_]+\]\Z")
_MARKER_PREFIX = "[REDACTED:"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

# Values that sit where a secret would but are not one: empty or masked values, booleans,
# placeholders and references to a secret kept elsewhere. Keeping them keeps "token: expired"
# and "password=${DB_PASSWORD}" readable; none of them grants anything.
_PLACEHOLDER = re.compile(
    r"(?i)null|none|nil|undefined|true|false|empty|redacted|masked|hidden|expired|invalid"
    r"|missing|required|\*+|x{3,}|<[^<>]*>|\$\{.*|\{\{.*|\$[a-z_][a-z0-9_]*"
)
# A bare value that is a call or a subscript is source code (a traceback quoting
# `API_KEY = os.environ["API_KEY"]`), not a secret.
_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*[(\[].*")

_DSN_SCHEMES: Final = frozenset(
    "postgres postgresql mysql mariadb mongodb redis rediss amqp amqps mssql sqlserver oracle "
    "cockroachdb clickhouse cassandra memcached kafka nats neo4j bolt".split()
)
"""URL schemes of databases and brokers: their credentials are reported as `dsn_password`."""

# Key names (lower-cased, punctuation and trailing digits dropped) that end like a secret but
# hold none: AWS pagination and idempotency tokens, which the analysis may need to quote.
_NOT_SECRET_KEY_SUFFIXES: Final = (
    "nexttoken",
    "pagetoken",
    "continuationtoken",
    "paginationtoken",
    "startingtoken",
    "clienttoken",
    "clientrequesttoken",
    "idempotencytoken",
    "synctoken",
    "canceltoken",
    "cancellationtoken",
)
_AWS_SESSION_TOKEN_KEYS: Final = frozenset(
    {"sessiontoken", "awssessiontoken", "awssecuritytoken", "xamzsecuritytoken"}
)
# Ordered: the first suffix a normalised key ends with decides its kind.
_KEY_SUFFIX_KINDS: Final = (
    ("secretaccesskey", "aws_secret_key"),
    ("accountkey", "azure_storage_key"),
    ("sharedaccesskey", "azure_storage_key"),
    ("awssecretkey", "aws_secret_key"),
    ("password", "password"),
    ("passwd", "password"),
    ("passphrase", "password"),
    ("pwd", "password"),
    ("sessionid", "session_id"),
    ("phpsessid", "session_id"),
    ("connectsid", "session_id"),
    ("privatekey", "private_key"),
    ("secretkey", "secret"),
    ("secretstring", "secret"),
    ("secret", "secret"),
    ("apikey", "api_key"),
    ("accesskey", "api_key"),
    ("routingkey", "api_key"),
    ("applicationkey", "api_key"),
    ("appkey", "api_key"),
    ("licensekey", "api_key"),
    ("integrationkey", "api_key"),
    ("servicekey", "api_key"),
    ("authkey", "api_key"),
    ("signingkey", "secret"),
    ("encryptionkey", "secret"),
    ("masterkey", "secret"),
    ("authorization", "authorization"),
    ("cookie", "cookie"),
    ("token", "token"),
)
# Names that are sometimes a secret and often not (`key` of an S3 object, `auth` mode, `salt`
# setting): the value goes only when it looks random (`analysis.secret_values.looks_random`).
_GUARDED_KEY_SUFFIXES: Final = (
    "key",
    "pass",
    "auth",
    "credential",
    "credentials",
    "creds",
    "cred",
    "hmac",
    "salt",
)
# A `<word>_key` whose word names a thing rather than a provider is an identifier: PagerDuty's
# `incident_key`, Alertmanager's `groupKey`, DynamoDB's `partition_key`, an S3 object key.
_IDENTIFIER_KEY_WORDS: Final = (
    "incident",
    "dedup",
    "deduplication",
    "group",
    "idempotency",
    "partition",
    "sort",
    "range",
    "hash",
    "primary",
    "foreign",
    "cache",
    "object",
    "issue",
    "project",
    "message",
    "event",
    "request",
    "correlation",
    "trace",
    "lookup",
    "index",
    "shard",
    "row",
    "unique",
    "bucket",
    "file",
    "item",
    "record",
    "resource",
    "config",
    "feature",
    "metric",
    "label",
    "tag",
    "lock",
    "job",
    "task",
    "queue",
    "stream",
    "s3",
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_KEY_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_.-")
_KEY_LOOKBACK = 64
"""How far back a key name is read from its secret-sounding ending."""
_SCHEME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "+.-")
_EMAIL_LOCAL_CHARS: Final = frozenset(string.ascii_letters + string.digits + "._%+-")

# --- patterns matched against the original text -------------------------------------------
# A boundary lookbehind such as `(?<![A-Za-z0-9](?<!\\[nrt]))` reads "not after a letter or
# digit, unless that letter ends a `\n`, `\r` or `\t` escape": in JSON-serialised evidence a
# header or a key often follows an escaped newline.

_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]{0,20000}?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    # No END line (the evidence was cut): everything that can still be key material goes.
    r"|(?:[A-Za-z0-9+/=\s:,-]|\\+[nrt])*)"
)
_JWT = re.compile(
    r"eyJ(?<![A-Za-z0-9_-](?<!\\[nrt])eyJ)"
    r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"(?:\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?"
)
# AKIA long-term, ASIA temporary, ABIA/ACCA service credentials. AIDA, AROA, ANPA... name users,
# roles and policies: identifiers, not credentials, and kept. A 40-character mixed-case value
# right after the key id is its secret (credential CSVs, `id:secret` pairs).
_AWS_ACCESS_KEY = re.compile(
    r"(?:AKIA|ASIA|ABIA|ACCA)(?<![A-Za-z0-9](?<!\\[nrt])....)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"(?:(?P<gap>[ \t,;:|\"'=]{1,6})"
    r"(?P<secret>(?=[a-z0-9/+]{0,39}[A-Z])(?=[A-Z0-9/+]{0,39}[a-z])[A-Za-z0-9/+]{40})"
    r"(?![A-Za-z0-9/+=]))?"
)
# Every STS session token starts with the same encoded header, whatever key it sits under.
_AWS_SESSION_TOKEN = re.compile(
    r"(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)(?<![A-Za-z0-9/+](?<!\\[nrt]).{12})"
    r"[A-Za-z0-9/+=%]{20,}"
)
_SLACK_TOKEN = re.compile(
    r"x(?<![A-Za-z0-9_-](?<!\\[nrt])x)"
    r"(?:ox[abeoprs](?:\.xox[abeoprs])?-|app-)[A-Za-z0-9-]{10,}"
)
_GITHUB_TOKEN = re.compile(
    r"g(?<![A-Za-z0-9_](?<!\\[nrt])g)"
    r"(?:h[pousr]_[A-Za-z0-9]{30,}|ithub_pat_[A-Za-z0-9_]{30,})"
)
_STRIPE_KEY = re.compile(r"[prs]k_(?:live|test)_(?<![A-Za-z0-9_](?<!\\[nrt]).{8})[A-Za-z0-9]{10,}")
_STRIPE_WEBHOOK_SECRET = re.compile(r"whsec_(?<![A-Za-z0-9_](?<!\\[nrt]).{6})[A-Za-z0-9]{20,}")
_ANTHROPIC_KEY = re.compile(r"sk-ant-(?<![A-Za-z0-9_-](?<!\\[nrt]).{7})[A-Za-z0-9_-]{20,}")
_OPENAI_KEY = re.compile(r"sk-(?<![A-Za-z0-9_-](?<!\\[nrt])sk-)(?!ant-)[A-Za-z0-9_-]{20,}")
_GOOGLE_API_KEY = re.compile(
    r"AIza(?<![A-Za-z0-9_-](?<!\\[nrt])AIza)[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"
)
# The password may contain `@` and `:` (the last `@` before the host ends it) but not `/`, so
# `https://host:8443/@user` is a port and a path, not credentials. The user has no brackets,
# so a marker already in the text is never cut in two.
_URL_CREDENTIALS = re.compile(
    r"://(?P<user>[^\s:/?#\"'<>\\\[\]]*):(?P<password>[^\s/?#\"'<>\\]+)@(?=[A-Za-z0-9\[])"
)
# Anchored on `@`; the local part is found by scanning back (see `_Rule.extend_left`).
# `git@host` is an SSH remote, not somebody's address; `Object@1b2c3d.toString(` is code; a
# Google service account (`loader@project.iam.gserviceaccount.com`) names a workload, like an ARN.
_EMAIL_DOMAIN = re.compile(
    r"@(?<=[A-Za-z0-9._%+-]@)(?<!(?<![A-Za-z0-9._%+-](?<!\\[nrt]))git@)"
    r"(?![A-Za-z0-9.-]*\.gserviceaccount\.com(?![A-Za-z0-9.-]))"
    r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9(-])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# Anchored on the first dot; the first octet (checked by the lookbehinds) is found by scanning
# back. Not after a digit or dot, nor followed by one: `1.2.3.4.5` is not an address.
_IPV4_TAIL = re.compile(
    r"\.(?:(?<=(?<![0-9.])[0-9]\.)|(?<=(?<![0-9.])[1-9][0-9]\.)"
    r"|(?<=(?<![0-9.])(?:1[0-9]{2}|2[0-4][0-9]|25[0-5])\.))"
    rf"{_OCTET}\.{_OCTET}\.{_OCTET}(?![0-9]|\.[0-9])"
)
_IPV6_HINT = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![A-Za-z0-9:.%](?<!\\[nrt])[0-9A-Fa-f:])"
    r"(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)"
    r"[0-9A-Fa-f:.]*+(?:%[A-Za-z0-9_.-]+)?(?![A-Za-z0-9:%])"
)

# --- patterns matched against the ASCII-lower-cased text ----------------------------------

_MARKER_LOWER = r"\[redacted:[a-z0-9_]+\]"
# A value after a key: double- or single-quoted (at any JSON escaping depth, the closing quote
# optional because evidence is cut to size), or bare up to a delimiter. A bare value never starts
# with a bracket, so `"token": {...}` and `password = (sensitive value)` are not values, but may
# be exactly a marker so that a second pass recognises its own work.
_VALUE = (
    r"(?:(?P<dq>\\*\")(?P<dqv>(?:[^\"\\\r\n]|\\+[^\"\\\r\n])*)(?P=dq)?"
    r"|(?P<sq>\\*')(?P<sqv>(?:[^'\\\r\n]|\\+[^'\\\r\n])*)(?P=sq)?"
    rf"|(?P<bare>(?:{_MARKER_LOWER}|[^\s\"'`,;&<>\\{{}}()\[\]])[^\s\"'`,;&<>\\]*))"
)
_ASSIGNMENT = r"\d{0,2}\\*[\"']?[ \t]*(?P<sep>=>|:=|[:=])[ \t]*"
# The endings of secret-named keys, one pattern each so that each starts with a literal.
# They only find candidates: `_secret_kind` decides on the whole key, read backwards.
_KEY_ENDINGS = (
    r"pass(?:word|wd|phrase)?",
    r"pwd",
    r"auth",
    r"cred(?:ential)?s?",
    r"hmac",
    r"salt",
    r"secret(?:[_-]?(?:access[_-]?)?key|[_-]?string)?",
    r"key",
    r"token",
    r"sess(?:ion[_-]?id|id)",
    r"connect\.sid",
)
_KEY_VALUES = tuple(
    re.compile(f"(?P<family>{ending}){_ASSIGNMENT}{_VALUE}") for ending in _KEY_ENDINGS
)
_CLI_FLAG = re.compile(
    r"--(?<![a-z0-9_-](?<!\\[nrt])--)"
    rf"[a-z0-9-]*?(?P<family>{'|'.join(_KEY_ENDINGS)})\d{{0,2}}"
    rf"(?P<sep>[ \t]+)(?!-){_VALUE}"
)
# `{"name": "DB_PASSWORD", "value": "..."}`: container environments, tags, stack parameters.
_NAME_VALUE = re.compile(
    r"\"(?:name|key|parameterkey)(?P<nq>\\*\")[ \t]*:[ \t]*(?P=nq)"
    r"(?P<name>[a-z0-9_.-]{1,128})(?P=nq)[ \t]*,[ \t]*(?P=nq)(?:value|parametervalue)(?P=nq)"
    rf"[ \t]*:[ \t]*{_VALUE}"
)
_AWS_SECRET_KEY = re.compile(
    r"secret[_-]?(?:access[_-]?)?key\\*[\"']?[ \t]*(?:=>|:=|[:=]|(?=[ \t]))[ \t]*\\*[\"']?"
    r"(?P<value>[a-z0-9/+]{40})(?![a-z0-9/+=])"
)
_SLACK_WEBHOOK = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<value>[a-z0-9_/-]{8,})"
)
_AUTHORIZATION = re.compile(
    r"authori[sz]ation(?<![a-z0-9_](?<!\\[nrt]).{13})"
    r"\\*[\"']?[ \t]*[:=][ \t]*(?:\\*[\"'])?[ \t]*"
    r"(?P<value>[^\s\"'\\{\[][^\r\n\"'\\]*)"
)
# Outside a header, "bearer" is often prose ("the bearer of the token"): only a credential of
# 16 or more token characters with a digit in it counts.
_BEARER = re.compile(
    r"bearer(?<![a-z0-9_-](?<!\\[nrt]).{6})[ \t]+"
    r"(?P<value>(?=[a-z._~+/-]*[0-9])[a-z0-9._~+/-]{16,}=*)"
)
_COOKIE = re.compile(
    r"cookie(?<![a-z0-9_](?<!\\[nrt]).{6})\\*[\"']?[ \t]*[:=][ \t]*"
    r"(?:(?P<array>\[[^\]\r\n]*\]?)|(?:\\*[\"'])?[ \t]*(?P<value>[^\s\"'\\{\[][^\r\n\"'\\]*))"
)

# --- patterns applied to a value already cut out --------------------------------------------

_AUTH_SCHEME = re.compile(
    r"(?i)(?:bearer|basic|token|negotiate|ntlm|dpop)[ \t]+(?P<cred>[A-Za-z0-9._~+/-]*=*)"
)
_COOKIE_PAIR = re.compile(r"(?P<name>[^=;,\s\"'\\]+)=(?P<value>[^;,\s\"'\\]*)")
_COOKIE_IN_ARRAY = re.compile(r"(?P<head>\\*[\"'][ \t]*[^=;,\s\"'\\]+=)(?P<value>[^;,\s\"'\\]*)")


def _marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _lower(text: str) -> str:
    """Lower-case ASCII letters only: `str.lower` can change the length of non-ASCII text
    (`İ` becomes two characters), and the lower-cased copy must align with the original."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _group(match: re.Match[str], text: str, group: str) -> str | None:
    """A group's span read from the original text (the match may be on the lower-cased copy)."""
    start, end = match.span(group)
    return None if start < 0 else text[start:end]


def _scan_back(text: str, end: int, chars: frozenset[str], floor: int = 0) -> int:
    """The start of the run of `chars` that ends at `end`, not before `floor`. The letter of a
    `\\n`, `\\r` or `\\t` escape ends the run: it belongs to the escape, not to the word."""
    start = end
    while start > max(floor, 0) and text[start - 1] in chars:
        if text[start - 1] in "nrt" and start >= 2 and text[start - 2] == "\\":
            break
        start -= 1
    return start


def _is_kept(value: str) -> bool:
    """True for a value that is not a secret although it sits where one would (see
    `_PLACEHOLDER`), and for a marker, which a rule must never rewrite."""
    return (
        not value
        or _PLACEHOLDER.fullmatch(value) is not None
        or _MARKER.fullmatch(value) is not None
    )


def _normalise_key(key: str) -> str:
    """`X-Amz-Security-Token`, `aws_session_token2` and `SessionToken` compare as
    `xamzsecuritytoken`, `awssessiontoken` and `sessiontoken`."""
    return _NOT_ALNUM.sub("", _lower(key)).rstrip(string.digits)


@functools.lru_cache(maxsize=4096)
def _kind_for_key(key: str) -> str | None:
    """The kind of secret a value under `key` is, or None when the name says nothing secret.
    A marker in the key says nothing: `[REDACTED:private_key]` names what the key was."""
    name = _normalise_key(_MARKER.sub("", key) if _MARKER_PREFIX in key else key)
    if name.endswith(_NOT_SECRET_KEY_SUFFIXES):
        return None
    if name in _AWS_SESSION_TOKEN_KEYS:
        return "aws_session_token"
    return next((kind for suffix, kind in _KEY_SUFFIX_KINDS if name.endswith(suffix)), None)


def _secret_kind(key: str, value: str) -> str | None:
    """Like `_kind_for_key`, also knowing the value: `PWD=/srv/app` is the shell's working
    directory, not a password; under a name that only sometimes holds a secret (`key`, `auth`,
    `credentials`), a value is one when it looks random."""
    kind = _kind_for_key(key)
    if kind == "password" and _normalise_key(key) in ("pwd", "oldpwd") and value.startswith("/"):
        return None
    if kind is None and looks_random(value):
        name = _normalise_key(_MARKER.sub("", key) if _MARKER_PREFIX in key else key)
        if name.endswith(_GUARDED_KEY_SUFFIXES) and not name.endswith(_NOT_SECRET_KEY_SUFFIXES):
            if not (name.endswith("key") and name[:-3].endswith(_IDENTIFIER_KEY_WORDS)):
                return "credential"
    return kind


def _value_group(match: re.Match[str]) -> str:
    if match.group("dq") is not None:
        return "dqv"
    return "sqv" if match.group("sq") is not None else "bare"


_CLOSING: Final = {")": "(", "]": "[", "}": "{"}


def _trim_bare(value: str) -> str:
    """A bare value without trailing dots and unbalanced closing brackets, which belong to
    the sentence or the structure around it (`Config{password=abc}.`)."""
    end = len(value)
    while end > 0 and _MARKER_AT_END.search(value, 0, end) is None:
        last = value[end - 1]
        opening = _CLOSING.get(last)
        if last == "." or (
            opening is not None and value.count(opening, 0, end) < value.count(last, 0, end)
        ):
            end -= 1
        else:
            break
    return value[:end]


def _replace_value(match: re.Match[str], text: str, kind: str) -> str:
    """The match with its `_VALUE` part replaced by a marker; key, separator and quotes kept."""
    group = _value_group(match)
    value = _group(match, text, group) or ""
    if group == "bare":
        value = _trim_bare(value)
        if _CODE.fullmatch(value):
            return text[match.start() : match.end()]
    if _is_kept(value):
        return text[match.start() : match.end()]
    value_start = match.start(group)
    return (
        text[match.start() : value_start]
        + _marker(kind)
        + text[value_start + len(value) : match.end()]
    )


_STATUS_LIKE = re.compile(r"[0-9]{1,4}")
"""`cannot fetch token: 401`: a status or a count, not a token (a PIN can be a password)."""


def _key_value(match: re.Match[str], text: str) -> str:
    """A value after a secret-named key (`k=v`, `k: v`, `"k": "v"`, `--k v`).

    The pattern anchors on the key's ending; the whole key is read backwards from there, because
    the whole name decides (`NextToken` is pagination, `csrf_token` a secret). A key right after
    `/`, or after `:` with a bare `:` separator, is a path or an ARN segment (`/oauth/token: 401`,
    `...:secret:prod/db`), not a key. A number of up to four digits is a status or a count,
    except as a password.
    """
    value = _group(match, text, _value_group(match)) or ""
    if value.startswith(_MARKER_PREFIX) and _MARKER.fullmatch(value):
        return text[match.start() : match.end()]  # already redacted: the common second pass
    family_start, family_end = match.span("family")
    start = _scan_back(text, family_start, _KEY_CHARS, floor=family_start - _KEY_LOOKBACK)
    before = text[start - 1] if start else ""
    if before == "/" or (before == ":" and match.group("sep") == ":"):
        return text[match.start() : match.end()]
    kind = _secret_kind(text[start:family_end], value)
    if kind is None or (kind != "password" and _STATUS_LIKE.fullmatch(value)):
        return text[match.start() : match.end()]
    return _replace_value(match, text, kind)


def _name_value(match: re.Match[str], text: str) -> str:
    value = _group(match, text, _value_group(match)) or ""
    kind = _secret_kind(_group(match, text, "name") or "", value)
    return text[match.start() : match.end()] if kind is None else _replace_value(match, text, kind)


def _aws_access_key(match: re.Match[str], text: str) -> str:
    if match.group("secret") is None:
        return _marker("aws_access_key")
    return _marker("aws_access_key") + match.group("gap") + _marker("aws_secret_key")


def _value_replacer(kind: str) -> Callable[[re.Match[str], str], str]:
    """A replacement that keeps the match around its `value` group and redacts the value,
    unless the value is a placeholder (`-p$MYSQL_PWD`) or already a marker."""

    def replace(match: re.Match[str], text: str) -> str:
        value = match.group("value")
        if _is_kept(value) or value.startswith(_MARKER_PREFIX):
            return text[match.start() : match.end()]
        return (
            text[match.start() : match.start("value")]
            + _marker(kind)
            + text[match.end("value") : match.end()]
        )

    return replace


def _redact_authorization(value: str) -> str:
    """An `Authorization` value: keep the scheme, redact the credential.

    Bearer-like schemes carry one token, so only that token goes (`bearer`, or `basic_auth`
    for Basic, whose token is `user:password` in base64). Any other value (AWS SigV4, Digest,
    a raw key) goes whole as `authorization`: its parameters are credentials or derived from
    them.
    """
    scheme = _AUTH_SCHEME.match(value)
    if scheme is not None:
        credential = scheme.group("cred")
        if _is_kept(credential):
            return value
        kind = "basic_auth" if value[:5].lower() == "basic" else "bearer"
        return value[: scheme.start("cred")] + _marker(kind) + value[scheme.end("cred") :]
    stripped = value.rstrip()
    if _is_kept(stripped) or stripped.startswith(_MARKER_PREFIX):
        return value
    return _marker("authorization") + value[len(stripped) :]


def _authorization(match: re.Match[str], text: str) -> str:
    value = _group(match, text, "value") or ""
    return text[match.start() : match.start("value")] + _redact_authorization(value)


def _cookie_pair(match: re.Match[str]) -> str:
    if _is_kept(match.group("value")):
        return match.group(0)
    return f"{match.group('name')}={_marker('cookie')}"


def _cookie_in_array(match: re.Match[str]) -> str:
    if _is_kept(match.group("value")):
        return match.group(0)
    return match.group("head") + _marker("cookie")


def _cookie(match: re.Match[str], text: str) -> str:
    """A `Cookie` header loses every value and keeps the cookie names; a `Set-Cookie` header
    loses its first pair's value and keeps the attributes (`Path`, `HttpOnly`, `Expires`)."""
    array = _group(match, text, "array")
    group = "array" if array is not None else "value"
    head = text[match.start() : match.start(group)]
    if array is not None:
        return head + _COOKIE_IN_ARRAY.sub(_cookie_in_array, array)
    value = _group(match, text, "value") or ""
    if "=" in value:
        set_cookie = _lower(text[max(0, match.start() - 4) : match.start()]) == "set-"
        return head + _COOKIE_PAIR.sub(_cookie_pair, value, count=1 if set_cookie else 0)
    token = value.split(None, 1)[0]
    if _is_kept(token) or token.startswith(_MARKER_PREFIX):
        return head + value
    return head + _marker("cookie") + value[len(token) :]


def _url_credentials(match: re.Match[str], text: str) -> str:
    password = match.group("password")
    if _is_kept(password) or password.startswith(_MARKER_PREFIX):
        return match.group(0)
    start = _scan_back(text, match.start(), _SCHEME_CHARS)
    scheme = _lower(text[start : match.start()]).split("+", 1)[0]
    kind = "dsn_password" if scheme in _DSN_SCHEMES else "url_password"
    return f"://{match.group('user')}:{_marker(kind)}@"


def _ipv6(match: re.Match[str], text: str) -> str:
    """Keeps what only looks like IPv6 (times, MAC addresses, `a::b` in code): the candidate
    must parse and have two groups, so `::1` and a `[::2]` slice stay. A trailing dot ends the
    sentence, not the address."""
    candidate = match.group(0)
    core = candidate.rstrip(".")
    address = core.split("%", 1)[0]
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return candidate
    if sum(1 for group in re.split(r"[:.]", address) if group) < 2:
        return candidate
    return _marker("ip") + candidate[len(core) :]


_PROVIDER_TOKENS, _PROVIDER_KINDS = merged(tuple(form for form in FORMATS if form.stem))


def _provider_token(match: re.Match[str], text: str) -> str:
    return _marker(_PROVIDER_KINDS[match.lastgroup or ""])


_Replace = str | Callable[[re.Match[str], str], str]


@dataclass(frozen=True, slots=True)
class _Rule:
    """One redaction: where a pattern matches, the text is replaced (or kept, as the
    replacement function decides)."""

    pattern: re.Pattern[str]
    replace: _Replace
    """A marker, or a function of the match and the original text."""
    lowered: bool = False
    """Match against the ASCII-lower-cased copy (the pattern is written in lower case)."""
    extend_left: frozenset[str] = frozenset()
    """Characters the secret may start with before the match (a local part before `@`)."""
    gates: tuple[str, ...] = ()
    """For a pattern that cannot start with one literal: substrings of the text, one of which
    must occur for the rule to run. A literal-first pattern is as fast as the check."""
    hint: re.Pattern[str] | None = None
    """Likewise, a cheap search that must succeed, where no substring is selective enough."""

    def apply(self, text: str, lowered: str) -> str:
        """`text` with this rule's matches replaced; `lowered` is its lower-cased copy."""
        if self.gates and not any(gate in text for gate in self.gates):
            return text
        if self.hint is not None and self.hint.search(text) is None:
            return text
        pieces: list[str] = []
        last = 0
        for match in self.pattern.finditer(lowered if self.lowered else text):
            start = match.start()
            if self.extend_left:
                start = _scan_back(text, start, self.extend_left, floor=last)
            replace = self.replace
            pieces.append(text[last:start])
            pieces.append(replace if isinstance(replace, str) else replace(match, text))
            last = match.end()
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)


_SECRET_RULES: Final = (
    _Rule(_PRIVATE_KEY, _marker("private_key")),
    _Rule(_JWT, _marker("jwt")),
    _Rule(_AWS_ACCESS_KEY, _aws_access_key),
    _Rule(
        _AWS_SESSION_TOKEN,
        _marker("aws_session_token"),
        gates=("IQoJb3JpZ2lu", "oGZXIvYXdz"),
    ),
    _Rule(_AWS_SECRET_KEY, _value_replacer("aws_secret_key"), lowered=True),
    _Rule(_SLACK_TOKEN, _marker("slack_token")),
    _Rule(_SLACK_WEBHOOK, _value_replacer("slack_webhook"), lowered=True),
    _Rule(_GITHUB_TOKEN, _marker("github_token")),
    _Rule(_STRIPE_KEY, _marker("stripe_key"), gates=("k_live_", "k_test_")),
    _Rule(_STRIPE_WEBHOOK_SECRET, _marker("stripe_key")),
    _Rule(_ANTHROPIC_KEY, _marker("anthropic_key")),
    _Rule(_OPENAI_KEY, _marker("openai_key")),
    _Rule(_GOOGLE_API_KEY, _marker("google_api_key")),
    _Rule(_PROVIDER_TOKENS, _provider_token),
    *(
        _Rule(form.pattern, _marker(form.kind), gates=form.gates, hint=form.hint)
        for form in FORMATS
        if not form.stem
    ),
    *(
        _Rule(form.pattern, _value_replacer(form.kind), gates=form.gates, hint=form.hint)
        for form in CONTEXT_FORMATS
    ),
    _Rule(_AUTHORIZATION, _authorization, lowered=True),
    _Rule(_BEARER, _value_replacer("bearer"), lowered=True),
    _Rule(_URL_CREDENTIALS, _url_credentials),
    _Rule(_COOKIE, _cookie, lowered=True),
    _Rule(_NAME_VALUE, _name_value, lowered=True),
    *(_Rule(pattern, _key_value, lowered=True) for pattern in _KEY_VALUES),
    _Rule(_CLI_FLAG, _key_value, lowered=True),
    _Rule(_EMAIL_DOMAIN, _marker("email"), extend_left=_EMAIL_LOCAL_CHARS),
)
_IP_RULES: Final = (
    _Rule(_IPV6, _ipv6, hint=_IPV6_HINT),
    _Rule(_IPV4_TAIL, _marker("ip"), extend_left=frozenset(string.digits)),
)
_SECRET_AND_IP_RULES: Final = _SECRET_RULES + _IP_RULES


def _one_pass(text: str, rules: tuple[_Rule, ...]) -> str:
    lowered = _lower(text)
    for rule in rules:
        redacted = rule.apply(text, lowered)
        if redacted != text:
            text = redacted
            lowered = _lower(text)
    return text


def redact(text: str, *, redact_ips: bool = False) -> str:
    """`text` with every secret replaced by `[REDACTED:<kind>]`, everything else unchanged.
    Idempotent: a second call finds nothing more to do.

    `redact_ips` (the `REDACT_IPS` setting) also replaces IPv4 and IPv6 addresses with
    `[REDACTED:ip]`. It is off by default because addresses are what a network incident is
    about, and an address grants nothing on its own.
    """
    if _PLAIN.fullmatch(text):
        return text
    rules = _SECRET_AND_IP_RULES if redact_ips else _SECRET_RULES
    for _ in range(_MAX_PASSES):
        redacted = _one_pass(text, rules)
        if redacted == text:
            break
        text = redacted
    return text


_PAIR_NAME_KEYS: Final = ("name", "Name", "key", "Key", "ParameterKey")
_PAIR_VALUE_KEYS: Final = frozenset({"value", "Value", "ParameterValue"})


def redact_json(value: Any, *, redact_ips: bool = False) -> Any:
    """A copy of a JSON value with every string redacted as by `redact`; the input is untouched.

    Structure helps beyond text: a value under a secret-named key (`password`, `api_key`,
    `client_secret`, `X-Amz-Security-Token`, `Cookie`...) is replaced whole even when it does
    not look like a token, numbers included, and so is the `value` of a `{"name": "DB_PASSWORD",
    "value": ...}` pair; an `Authorization` value keeps its scheme. Keys are kept, but a key
    that is itself a secret or an address is redacted like any string (a clash gets a `#2`
    suffix rather than losing a value).

    Walks with an explicit stack, so depth costs memory, not recursion; a sub-value shared by
    two parents is copied once, and a cycle cannot loop forever.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, str | None]] = [(value, root, 0, None)]
    copies: dict[tuple[int, str | None], Any] = {}
    texts: list[tuple[Any, Any, str]] = []  # (parent, slot, text): redacted together at the end
    while stack:
        item, parent, slot, kind = stack.pop()
        if not isinstance(item, dict | list | tuple):
            scalar = _redact_by_kind(item, kind)
            if isinstance(scalar, str) and not _MARKER.fullmatch(scalar):
                texts.append((parent, slot, scalar))
            else:
                parent[slot] = scalar
            continue
        memo = (id(item), kind)
        if memo in copies:
            parent[slot] = copies[memo]
            continue
        if isinstance(item, dict):
            mapping: dict[Any, Any] = {}
            copies[memo] = parent[slot] = mapping
            pair_name = _pair_name(item, redact_ips)
            for key, child in item.items():
                new_key = _unique_key(mapping, key, redact_ips)
                mapping[new_key] = None
                stack.append((child, mapping, new_key, _child_kind(new_key, child, pair_name)))
        else:
            items: list[Any] = [None] * len(item)
            copies[memo] = parent[slot] = items
            # A list under a secret-named key is a list of secrets (`"passwords": [...]` is not
            # one, `"password": ["old", "new"]` is).
            stack.extend((child, items, index, kind) for index, child in enumerate(item))
    redacted = redact_many([text for _, _, text in texts], redact_ips=redact_ips)
    for (parent, slot, _), text in zip(texts, redacted, strict=True):
        parent[slot] = text
    return root[0]


_SEPARATOR: Final = "\x1e"
_JOINT: Final = f"\n{_SEPARATOR}\n"
_PLAIN: Final = re.compile(r"[A-Za-z0-9_-]{0,12}")
"""Too short to hold any secret the rules know, and without a separator or an `@`."""


def redact_many(texts: list[str], *, redact_ips: bool = False) -> list[str]:
    """`[redact(t) for t in texts]`, faster.

    Why: a JSON alert is hundreds of short strings, and each rule costs a call whatever the
    length, so the strings are redacted as one text, joined by a line holding only a record
    separator. No rule matches across a line break and a record separator, so each piece comes
    out as it would alone; a piece whose joint a rule touched anyway (it would have to eat the
    line break) is redacted again alone, so the result never depends on the neighbours."""
    results = list(texts)
    joined = [i for i, text in enumerate(texts) if not _PLAIN.fullmatch(text)]
    alone = [i for i in joined if _SEPARATOR in texts[i]]
    joined = [i for i in joined if _SEPARATOR not in texts[i]]
    if joined:
        pieces = redact(_JOINT.join(texts[i] for i in joined), redact_ips=redact_ips).split(
            _SEPARATOR
        )
        if len(pieces) != len(joined):
            alone.extend(joined)
        else:
            last = len(pieces) - 1
            for n, (index, piece) in enumerate(zip(joined, pieces, strict=True)):
                start = 1 if n else 0
                end = len(piece) - 1 if n < last else len(piece)
                intact = (not n or piece.startswith("\n")) and (n == last or piece.endswith("\n"))
                if intact and start <= end:
                    results[index] = piece[start:end]
                else:
                    alone.append(index)
    for index in alone:
        results[index] = redact(texts[index], redact_ips=redact_ips)
    return results


def _child_kind(key: Any, child: Any, pair_name: str | None) -> str | None:
    """The secret kind of a value, from its (already redacted) key: deciding on the key as it
    comes out, not as it went in, gives a second pass the same answer."""
    value = child if isinstance(child, str) else ""
    if pair_name is not None and key in _PAIR_VALUE_KEYS:
        return _secret_kind(pair_name, value)
    if not isinstance(key, str):
        return None
    return _secret_kind(key, value)


def _pair_name(item: dict[Any, Any], redact_ips: bool) -> str | None:
    """The name of a `{"name": ..., "value": ...}` pair (ECS and Lambda environments, tags,
    CloudFormation parameters) as it comes out, or None: it decides whether the value is a
    secret, like a key does (`_child_kind`)."""
    if _PAIR_VALUE_KEYS.isdisjoint(item):
        return None
    name = next((item[k] for k in _PAIR_NAME_KEYS if isinstance(item.get(k), str)), None)
    return None if name is None else redact(name, redact_ips=redact_ips)


@functools.lru_cache(maxsize=4096)
def _redact_key(key: str, redact_ips: bool) -> str:
    """Keys repeat across a document's alerts and across alerts (`labels`, `startsAt`), and
    redaction is a pure function: each distinct key is redacted once."""
    return redact(key, redact_ips=redact_ips)


def _unique_key(mapping: dict[Any, Any], key: Any, redact_ips: bool) -> Any:
    if not isinstance(key, str):
        return key
    new_key = _redact_key(key, redact_ips)
    suffix = 2
    unique = new_key
    while unique in mapping:
        unique = f"{new_key}#{suffix}"
        suffix += 1
    return unique


def _redact_by_kind(item: Any, kind: str | None) -> Any:
    """A scalar under a secret-named key, replaced whole (an `Authorization` value keeps its
    scheme); any other scalar as it is. A string that comes out still goes through `redact`."""
    if kind is not None and not isinstance(item, bool):
        if isinstance(item, int | float):
            return _marker(kind)
        if isinstance(item, str):
            if kind == "authorization":
                return _redact_authorization(item)
            if not _is_kept(item):
                return _marker(kind)
    return item
