"""Which names announce a secret: the key, header, flag or variable a value sits under.

The whole name decides, read as lower-case letters and digits without punctuation or trailing
digits, by its ending: `aws_secret_access_key`, `X-Api-Key` and `DB_PASSWORD2` end like secrets,
`NextToken` and `max_tokens` do not. Some endings hold a secret only sometimes (`key`, `auth`,
`salt`): there the value decides (`analysis.secret_values.looks_random`).
"""

from __future__ import annotations

import functools
import re
import string
from typing import Final

from analysis.markers import MARKER, MARKER_PREFIX, ascii_lower
from analysis.secret_values import looks_random

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


def normalise_key(key: str) -> str:
    """`X-Amz-Security-Token`, `aws_session_token2` and `SessionToken` compare as
    `xamzsecuritytoken`, `awssessiontoken` and `sessiontoken`."""
    return _NOT_ALNUM.sub("", ascii_lower(key)).rstrip(string.digits)


@functools.lru_cache(maxsize=4096)
def kind_for_key(key: str) -> str | None:
    """The kind of secret a value under `key` is, or None when the name says nothing secret.
    A marker in the key says nothing: `[REDACTED:private_key]` names what the key was."""
    name = normalise_key(MARKER.sub("", key) if MARKER_PREFIX in key else key)
    if name.endswith(_NOT_SECRET_KEY_SUFFIXES):
        return None
    if name in _AWS_SESSION_TOKEN_KEYS:
        return "aws_session_token"
    return next((kind for suffix, kind in _KEY_SUFFIX_KINDS if name.endswith(suffix)), None)


def secret_kind(key: str, value: str) -> str | None:
    """Like `kind_for_key`, also knowing the value: `PWD=/srv/app` is the shell's working
    directory, not a password; under a name that only sometimes holds a secret (`key`, `auth`,
    `credentials`), a value is one when it looks random."""
    kind = kind_for_key(key)
    if kind == "password" and normalise_key(key) in ("pwd", "oldpwd") and value.startswith("/"):
        return None
    if kind is None and looks_random(value):
        name = normalise_key(MARKER.sub("", key) if MARKER_PREFIX in key else key)
        if name.endswith(_GUARDED_KEY_SUFFIXES) and not name.endswith(_NOT_SECRET_KEY_SUFFIXES):
            if not (name.endswith("key") and name[:-3].endswith(_IDENTIFIER_KEY_WORDS)):
                return "credential"
    return kind
