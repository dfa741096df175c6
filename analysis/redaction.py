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

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from analysis.ip_addresses import IPV4_TAIL, IPV6, IPV6_HINT, replace_ipv6
from analysis.markers import MARKER, MARKER_PREFIX, ascii_lower, marker
from analysis.secret_formats import CONTEXT_FORMATS, FORMATS, merged
from analysis.secret_formats import KINDS as FORMAT_KINDS
from analysis.secret_names import secret_kind

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

_MARKER_AT_END = re.compile(r"\[REDACTED:[a-z0-9_]+\]\Z")

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
# They only find candidates: `secret_kind` decides on the whole key, read backwards.
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


def is_kept(value: str) -> bool:
    """True for a value that is not a secret although it sits where one would (see
    `_PLACEHOLDER`), and for a marker, which a rule must never rewrite."""
    return (
        not value
        or _PLACEHOLDER.fullmatch(value) is not None
        or MARKER.fullmatch(value) is not None
    )


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
    if is_kept(value):
        return text[match.start() : match.end()]
    value_start = match.start(group)
    return (
        text[match.start() : value_start]
        + marker(kind)
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
    if value.startswith(MARKER_PREFIX) and MARKER.fullmatch(value):
        return text[match.start() : match.end()]  # already redacted: the common second pass
    family_start, family_end = match.span("family")
    start = _scan_back(text, family_start, _KEY_CHARS, floor=family_start - _KEY_LOOKBACK)
    before = text[start - 1] if start else ""
    if before == "/" or (before == ":" and match.group("sep") == ":"):
        return text[match.start() : match.end()]
    kind = secret_kind(text[start:family_end], value)
    if kind is None or (kind != "password" and _STATUS_LIKE.fullmatch(value)):
        return text[match.start() : match.end()]
    return _replace_value(match, text, kind)


def _name_value(match: re.Match[str], text: str) -> str:
    value = _group(match, text, _value_group(match)) or ""
    kind = secret_kind(_group(match, text, "name") or "", value)
    return text[match.start() : match.end()] if kind is None else _replace_value(match, text, kind)


def _aws_access_key(match: re.Match[str], text: str) -> str:
    if match.group("secret") is None:
        return marker("aws_access_key")
    return marker("aws_access_key") + match.group("gap") + marker("aws_secret_key")


def _value_replacer(kind: str) -> Callable[[re.Match[str], str], str]:
    """A replacement that keeps the match around its `value` group and redacts the value,
    unless the value is a placeholder (`-p$MYSQL_PWD`) or already a marker."""

    def replace(match: re.Match[str], text: str) -> str:
        value = match.group("value")
        if is_kept(value) or value.startswith(MARKER_PREFIX):
            return text[match.start() : match.end()]
        return (
            text[match.start() : match.start("value")]
            + marker(kind)
            + text[match.end("value") : match.end()]
        )

    return replace


def redact_authorization(value: str) -> str:
    """An `Authorization` value: keep the scheme, redact the credential.

    Bearer-like schemes carry one token, so only that token goes (`bearer`, or `basic_auth`
    for Basic, whose token is `user:password` in base64). Any other value (AWS SigV4, Digest,
    a raw key) goes whole as `authorization`: its parameters are credentials or derived from
    them.
    """
    scheme = _AUTH_SCHEME.match(value)
    if scheme is not None:
        credential = scheme.group("cred")
        if is_kept(credential):
            return value
        kind = "basic_auth" if value[:5].lower() == "basic" else "bearer"
        return value[: scheme.start("cred")] + marker(kind) + value[scheme.end("cred") :]
    stripped = value.rstrip()
    if is_kept(stripped) or stripped.startswith(MARKER_PREFIX):
        return value
    return marker("authorization") + value[len(stripped) :]


def _authorization(match: re.Match[str], text: str) -> str:
    value = _group(match, text, "value") or ""
    return text[match.start() : match.start("value")] + redact_authorization(value)


def _cookie_pair(match: re.Match[str]) -> str:
    if is_kept(match.group("value")):
        return match.group(0)
    return f"{match.group('name')}={marker('cookie')}"


def _cookie_in_array(match: re.Match[str]) -> str:
    if is_kept(match.group("value")):
        return match.group(0)
    return match.group("head") + marker("cookie")


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
        set_cookie = ascii_lower(text[max(0, match.start() - 4) : match.start()]) == "set-"
        return head + _COOKIE_PAIR.sub(_cookie_pair, value, count=1 if set_cookie else 0)
    token = value.split(None, 1)[0]
    if is_kept(token) or token.startswith(MARKER_PREFIX):
        return head + value
    return head + marker("cookie") + value[len(token) :]


def _url_credentials(match: re.Match[str], text: str) -> str:
    password = match.group("password")
    if is_kept(password) or password.startswith(MARKER_PREFIX):
        return match.group(0)
    start = _scan_back(text, match.start(), _SCHEME_CHARS)
    scheme = ascii_lower(text[start : match.start()]).split("+", 1)[0]
    kind = "dsn_password" if scheme in _DSN_SCHEMES else "url_password"
    return f"://{match.group('user')}:{marker(kind)}@"


_PROVIDER_TOKENS, _PROVIDER_KINDS = merged(tuple(form for form in FORMATS if form.stem))


def _provider_token(match: re.Match[str], text: str) -> str:
    return marker(_PROVIDER_KINDS[match.lastgroup or ""])


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
    _Rule(_PRIVATE_KEY, marker("private_key")),
    _Rule(_JWT, marker("jwt")),
    _Rule(_AWS_ACCESS_KEY, _aws_access_key),
    _Rule(
        _AWS_SESSION_TOKEN,
        marker("aws_session_token"),
        gates=("IQoJb3JpZ2lu", "oGZXIvYXdz"),
    ),
    _Rule(_AWS_SECRET_KEY, _value_replacer("aws_secret_key"), lowered=True),
    _Rule(_SLACK_TOKEN, marker("slack_token")),
    _Rule(_SLACK_WEBHOOK, _value_replacer("slack_webhook"), lowered=True),
    _Rule(_GITHUB_TOKEN, marker("github_token")),
    _Rule(_STRIPE_KEY, marker("stripe_key"), gates=("k_live_", "k_test_")),
    _Rule(_STRIPE_WEBHOOK_SECRET, marker("stripe_key")),
    _Rule(_ANTHROPIC_KEY, marker("anthropic_key")),
    _Rule(_OPENAI_KEY, marker("openai_key")),
    _Rule(_GOOGLE_API_KEY, marker("google_api_key")),
    _Rule(_PROVIDER_TOKENS, _provider_token),
    *(
        _Rule(form.pattern, marker(form.kind), gates=form.gates, hint=form.hint)
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
    _Rule(_EMAIL_DOMAIN, marker("email"), extend_left=_EMAIL_LOCAL_CHARS),
)
_IP_RULES: Final = (
    _Rule(IPV6, replace_ipv6, hint=IPV6_HINT),
    _Rule(IPV4_TAIL, marker("ip"), extend_left=frozenset(string.digits)),
)
_SECRET_AND_IP_RULES: Final = _SECRET_RULES + _IP_RULES


def _one_pass(text: str, rules: tuple[_Rule, ...]) -> str:
    lowered = ascii_lower(text)
    for rule in rules:
        redacted = rule.apply(text, lowered)
        if redacted != text:
            text = redacted
            lowered = ascii_lower(text)
    return text


def redact(text: str, *, redact_ips: bool = False) -> str:
    """`text` with every secret replaced by `[REDACTED:<kind>]`, everything else unchanged.
    Idempotent: a second call finds nothing more to do.

    `redact_ips` (the `REDACT_IPS` setting) also replaces IPv4 and IPv6 addresses with
    `[REDACTED:ip]`. It is off by default because addresses are what a network incident is
    about, and an address grants nothing on its own.
    """
    if PLAIN.fullmatch(text):
        return text
    rules = _SECRET_AND_IP_RULES if redact_ips else _SECRET_RULES
    for _ in range(_MAX_PASSES):
        redacted = _one_pass(text, rules)
        if redacted == text:
            break
        text = redacted
    return text


PLAIN: Final = re.compile(r"[A-Za-z0-9_-]{0,12}")
"""Too short to hold any secret the rules know, and without a separator or an `@`."""
