"""Redaction: no seeded secret gets through, and the text around it stays useful.

The corpus (tests/fixtures/secrets_corpus.json, its `_about` says how it is read) holds
realistic texts with fake but format-valid secrets, each with the kinds its markers must name
and the context that must survive; texts with no secret that must come out unchanged; and texts
whose IP addresses go only with `REDACT_IPS`. Every entry is checked through `redact`, through
`redact_json`, and the way `analysis/evidence.py` sends it (inside a JSON-serialised payload,
so with escaped quotes and newlines). The table in docs/redaction.md is checked row by row, the
real sender payloads must lose nothing but their secrets, and properties over generated text
hold redaction to never raising, idempotence and replacing nothing but secrets.
"""

from __future__ import annotations

import copy
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.redaction import KINDS, redact
from analysis.redaction_json import redact_json, redact_many

ROOT = Path(__file__).resolve().parent.parent.parent
CORPUS = json.loads((ROOT / "tests" / "fixtures" / "secrets_corpus.json").read_text("utf-8"))
ENTRIES: list[dict[str, Any]] = CORPUS["entries"]
NEGATIVES: list[dict[str, str]] = CORPUS["negatives"]
IP_TEXTS: list[dict[str, Any]] = CORPUS["ip_addresses"]
PAYLOADS = ROOT / "tests" / "fixtures" / "payloads"
DOC_ROW = re.compile(r"^\| `([a-z_]+)` \| `(.+?)` \| `(.+?)` \|$", re.M)
MARKER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def label(text: str) -> str:
    return re.sub(r"\s+", " ", text)[:48]


def kinds_in(text: str) -> set[str]:
    return set(MARKER.findall(text))


def strings_in(value: Any) -> list[str]:
    """Every string of a JSON value, keys included."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(key for key in item if isinstance(key, str))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def only_markers_added(original: str, redacted: str) -> bool:
    """True when `redacted` is `original` with some non-empty substrings replaced by markers."""
    pieces = MARKER.split(redacted)[::2]
    pattern = ".+?".join(re.escape(piece) for piece in pieces)
    return re.fullmatch(pattern, original, re.S) is not None


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_is_large_well_formed_and_covers_every_kind() -> None:
    assert CORPUS["_about"].strip()
    assert len(ENTRIES) >= 60
    for entry in ENTRIES:
        assert entry["secrets"] and entry["kinds"], entry["text"]
        assert all(secret in entry["text"] for secret in entry["secrets"]), entry["text"]
        assert all(word in entry["text"] for word in entry["keep"]), entry["text"]
        assert set(entry["kinds"]) <= KINDS, entry["kinds"]
    named = {kind for entry in ENTRIES for kind in entry["kinds"]}
    assert named | kinds_of_the_per_kind_corpus() == KINDS - {"ip"}
    assert len(NEGATIVES) >= 20
    assert all(item["why"].strip() for item in NEGATIVES)


def kinds_of_the_per_kind_corpus() -> set[str]:
    """The kinds whose markers the samples of tests/fixtures/secrets/ come out with: every kind
    a rule can name is exercised by a realistic sample of one corpus or the other."""
    kinds: set[str] = set()
    for path in (ROOT / "tests" / "fixtures" / "secrets").glob("*.json"):
        for case in json.loads(path.read_text("utf-8"))["cases"]:
            if "secret" in case:
                kinds |= kinds_in(redact(case["text"]))
    return kinds


@pytest.mark.parametrize("entry", ENTRIES, ids=[label(e["text"]) for e in ENTRIES])
@pytest.mark.parametrize("redact_ips", [False, True], ids=["ips-kept", "ips-redacted"])
def test_no_seeded_secret_survives_and_the_context_does(
    entry: dict[str, Any], redact_ips: bool
) -> None:
    redacted = redact(entry["text"], redact_ips=redact_ips)

    assert [s for s in entry["secrets"] if s in redacted] == [], redacted
    assert set(entry["kinds"]) <= kinds_in(redacted), redacted
    assert kinds_in(redacted) <= KINDS
    if not redact_ips:
        assert [w for w in entry["keep"] if w not in redacted] == [], redacted
    assert only_markers_added(entry["text"], redacted)
    assert redact(redacted, redact_ips=redact_ips) == redacted


@pytest.mark.parametrize("entry", ENTRIES, ids=[label(e["text"]) for e in ENTRIES])
def test_redact_json_leaves_no_secret_in_any_string_nor_in_the_serialised_document(
    entry: dict[str, Any],
) -> None:
    text = entry["text"]
    document = {
        "alert": {"message": text, "labels": {"note": text}, "count": 3},
        "lines": [text, {"raw": text}],
    }
    before = copy.deepcopy(document)

    redacted = redact_json(document)
    serialised = json.dumps(redacted)

    assert document == before, "redact_json must not modify its input"
    for secret in entry["secrets"]:
        assert not any(secret in s for s in strings_in(redacted)), secret
        assert json.dumps(secret)[1:-1] not in serialised, secret
    for kind in entry["kinds"]:
        assert f"[REDACTED:{kind}]" in serialised
    assert redacted["alert"]["count"] == 3
    assert redact_json(redacted) == redacted


@pytest.mark.parametrize("entry", ENTRIES, ids=[label(e["text"]) for e in ENTRIES])
def test_no_secret_survives_inside_a_serialised_raw_payload(entry: dict[str, Any]) -> None:
    """As `analysis/evidence.py` sends an alert's raw payload: JSON-serialised into a string
    field, so the text arrives with its quotes and newlines escaped."""
    raw = json.dumps({"body": entry["text"], "source": "webhook"}, ensure_ascii=False)

    sent = json.dumps(redact_json({"raw_payload": raw}), ensure_ascii=False)

    for secret in entry["secrets"]:
        assert secret not in sent
        assert json.dumps(secret)[1:-1] not in sent
        assert json.dumps(json.dumps(secret)[1:-1])[1:-1] not in sent


@pytest.mark.parametrize("item", NEGATIVES, ids=[label(n["text"]) for n in NEGATIVES])
def test_texts_without_secrets_come_out_unchanged(item: dict[str, str]) -> None:
    text = item["text"]

    assert redact(text) == text
    assert redact_json({"message": text, "lines": [text]}) == {"message": text, "lines": [text]}
    assert kinds_in(redact(text, redact_ips=True)) <= {"ip"}


@pytest.mark.parametrize("item", IP_TEXTS, ids=[label(i["text"]) for i in IP_TEXTS])
def test_ip_addresses_go_only_with_the_setting(item: dict[str, Any]) -> None:
    text = item["text"]

    assert redact(text) == text
    redacted = redact(text, redact_ips=True)
    assert [a for a in item["addresses"] if a in redacted] == [], redacted
    assert kinds_in(redacted) == {"ip"}
    assert redact_json({"m": text}, redact_ips=True) == {"m": redacted}


def test_every_example_in_the_documentation_table_is_exact() -> None:
    rows = DOC_ROW.findall((ROOT / "docs" / "redaction.md").read_text("utf-8"))

    assert {kind for kind, _, _ in rows} == KINDS
    for kind, example, expected in rows:
        assert redact(example, redact_ips=kind == "ip") == expected, kind


def test_real_sender_payloads_lose_nothing_but_their_secrets() -> None:
    """The real CloudWatch, SNS, SQS, EventBridge, Alertmanager, Grafana, PagerDuty and
    Sentry samples keep their ARNs, account ids, alarm names, timestamps and ids; the only
    secrets in them are SNS subscription confirmation tokens."""
    files = [p for p in sorted(PAYLOADS.rglob("*")) if p.is_file() and p.suffix != ".md"]
    assert len(files) > 20
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        redacted = redact(text)
        assert kinds_in(redacted) <= {"token"}, path.name
        assert only_markers_added(text, redacted), path.name
        for arn in re.findall(r"arn:aws:[^\s\"'\\&,]+", text):
            assert arn in redacted, (path.name, arn)
        if path.suffix == ".json":
            document = json.loads(text)
            assert strings_in(redact_json(document)) == strings_in(document), path.name


# --- redact_json on structure -------------------------------------------------------------


def test_values_under_secret_named_keys_go_whole_and_the_rest_stays() -> None:
    document = {
        "password": "correct horse battery staple",
        "db": {"api_key": 12345, "token": ["first-one", "second-one"], "port": 5432},
        "headers": {
            "Authorization": "Bearer abc",
            "Cookie": "theme=dark",
            "X-Amz-Security-Token": "short",
        },
        "NextToken": "page-2",
        "max_tokens": 1024,
        "client_secret": None,
        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "PWD": "/srv/app",
    }

    assert redact_json(document) == {
        "password": "[REDACTED:password]",
        "db": {
            "api_key": "[REDACTED:api_key]",
            "token": ["[REDACTED:token]", "[REDACTED:token]"],
            "port": 5432,
        },
        "headers": {
            "Authorization": "Bearer [REDACTED:bearer]",
            "Cookie": "[REDACTED:cookie]",
            "X-Amz-Security-Token": "[REDACTED:aws_session_token]",
        },
        "NextToken": "page-2",
        "max_tokens": 1024,
        "client_secret": None,
        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        "PWD": "/srv/app",
    }


def test_name_value_pairs_lose_the_value_a_secret_name_announces() -> None:
    environment = [
        {"name": "DB_PASSWORD", "value": "plain"},
        {"Name": "LOG_LEVEL", "Value": "debug"},
        {"Key": "api_token", "Value": 42},
        {"ParameterKey": "SlackWebhookSecret", "ParameterValue": "x"},
    ]

    assert redact_json(environment) == [
        {"name": "DB_PASSWORD", "value": "[REDACTED:password]"},
        {"Name": "LOG_LEVEL", "Value": "debug"},
        {"Key": "api_token", "Value": "[REDACTED:token]"},
        {"ParameterKey": "SlackWebhookSecret", "ParameterValue": "[REDACTED:secret]"},
    ]


def test_keys_are_kept_unless_they_are_secrets_and_no_value_is_lost_to_a_clash() -> None:
    counts = {"jane@example.com": 3, "bob@example.com": 1, "status": "ok", 7: "seven"}

    assert redact_json(counts) == {
        "[REDACTED:email]": 3,
        "[REDACTED:email]#2": 1,
        "status": "ok",
        7: "seven",
    }


def test_scalars_tuples_and_other_values_keep_their_type() -> None:
    value = {"n": 1.5, "ok": True, "none": None, "pair": ("a@b.co", 2), "password": False}

    assert redact_json(value) == {
        "n": 1.5,
        "ok": True,
        "none": None,
        "pair": ["[REDACTED:email]", 2],
        "password": False,
    }
    assert redact_json("token=abc123") == "token=[REDACTED:token]"
    assert redact_json(None) is None


def test_deep_nesting_needs_no_recursion() -> None:
    depth = 50_000
    document: Any = "password=hunter2"
    for level in range(depth):
        document = [document] if level % 2 else {"k": document}

    redacted = redact_json(document)

    for level in reversed(range(depth)):
        redacted = redacted[0] if level % 2 else redacted["k"]
    assert redacted == "password=[REDACTED:password]"


def test_shared_and_cyclic_values_are_copied_once_and_terminate() -> None:
    shared = {"email": "jane@example.com"}
    cyclic: dict[str, Any] = {"a": shared, "b": shared}
    cyclic["self"] = cyclic

    redacted = redact_json(cyclic)

    assert redacted["a"] is redacted["b"]
    assert redacted["a"] == {"email": "[REDACTED:email]"}
    assert redacted["self"] is redacted


# --- behaviour worth pinning down -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The more precise kind wins, and the generic key rule leaves its marker alone.
        (
            "SLACK_BOT_TOKEN=xoxb-2222222222-3333333333333-FAKEexampleTOKEN",
            "SLACK_BOT_TOKEN=[REDACTED:slack_token]",
        ),
        ("Authorization: Bearer [REDACTED:jwt]", "Authorization: Bearer [REDACTED:jwt]"),
        # Placeholders and code stay readable.
        ("token: expired, password=${DB_PASSWORD}", "token: expired, password=${DB_PASSWORD}"),
        ('token = get_token("svc")', 'token = get_token("svc")'),
        ("Authorization: Bearer null", "Authorization: Bearer null"),
        # Trailing punctuation belongs to the sentence or the structure.
        ("Config{password=abc}.", "Config{password=[REDACTED:password]}."),
        # A password may contain `@` and `:`; the last `@` before the host ends it.
        (
            "redis://default:p@ss:w0rd@cache:6379",
            "redis://default:[REDACTED:dsn_password]@cache:6379",
        ),
        # A cut-off quoted value still goes.
        ('{"api_key": "abcdef0123', '{"api_key": "[REDACTED:api_key]'),
        # A 40-character secret next to its key id, and a git SHA next to nothing.
        (
            "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "[REDACTED:aws_access_key]:[REDACTED:aws_secret_key]",
        ),
        (
            "AKIAIOSFODNN7EXAMPLE 3f786850e387550fdab836ed7e6dc881de23001b",
            "[REDACTED:aws_access_key] 3f786850e387550fdab836ed7e6dc881de23001b",
        ),
        (
            "aws_secret_access_key=3f786850e387550fdab836ed7e6dc881de23001b",
            "aws_secret_access_key=[REDACTED:aws_secret_key]",
        ),
        # Non-ASCII text around a secret keeps its alignment.
        ("İstanbul ŞİFRE password=gizli123 ok", "İstanbul ŞİFRE password=[REDACTED:password] ok"),
        # Under a name that only sometimes holds a secret, a value goes when it looks generated.
        ("auth=Zm9vYmFyOmJhejEyMzQ1Njc4OTA", "auth=[REDACTED:credential]"),
        ("auth=none mode=iam", "auth=none mode=iam"),
        ("key=uploads/2026/12/07/report.pdf", "key=uploads/2026/12/07/report.pdf"),
        (
            '"key": "5f0e3c7a-8d4b-4f6e-9a1b-2c3d4e5f6a7b"',
            '"key": "5f0e3c7a-8d4b-4f6e-9a1b-2c3d4e5f6a7b"',
        ),
        ("groupKey=k8sAbc123XyZ789QwErTy", "groupKey=k8sAbc123XyZ789QwErTy"),
        ("--- PASS: TestCheckout (0.01s)", "--- PASS: TestCheckout (0.01s)"),
        ("DB_PASS=Xk9vQ2mP7rT4wZ8nL3", "DB_PASS=[REDACTED:credential]"),
        # A signed URL's signature goes; an SNS message's `Signature` field stays.
        (
            "GET /report.csv?X-Amz-Expires=300&X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6"
            "789a8edb4c82c400e06b5924a6f2b5d7 403",
            "GET /report.csv?X-Amz-Expires=300&X-Amz-Signature=[REDACTED:url_signature] 403",
        ),
        # Passwords on command lines: the command says which argument is one.
        ("curl -u deploy:S3cr3tPass https://x", "curl -u deploy:[REDACTED:cli_password] https://x"),
        ("docker run -u 1000:1000 app", "docker run -u 1000:1000 app"),
        (
            "mysql -h db -P 3306 -u app -pHunter22",
            "mysql -h db -P 3306 -u app -p[REDACTED:cli_password]",
        ),
        ("mysql -u app -p$MYSQL_PWD db", "mysql -u app -p$MYSQL_PWD db"),
        ("docker run -p 8080:80 app", "docker run -p 8080:80 app"),
        (
            "docker login -u bot -p 'dckrPass1' ghcr.io",
            "docker login -u bot -p '[REDACTED:cli_password]' ghcr.io",
        ),
        ("htpasswd -nb admin Pa55word", "htpasswd -nb admin [REDACTED:cli_password]"),
        # Connection strings.
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zm9vYmFy+/Zm9v==;"
            "EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=[REDACTED:azure_storage_key];"
            "EndpointSuffix=core.windows.net",
        ),
        (
            "Server=db;User Id=app;Password=S3cret!;",
            "Server=db;User Id=app;Password=[REDACTED:password];",
        ),
    ],
)
def test_pinned_behaviour(text: str, expected: str) -> None:
    assert redact(text) == expected


# --- properties ---------------------------------------------------------------------------

# Pieces that make redaction work hard when glued together at random: every seeded secret, keys
# and separators, quotes at several escaping depths, markers and their prefix, brackets,
# escapes, addresses, non-ASCII letters whose lower case is longer.
FRAGMENTS = sorted(
    {secret for entry in ENTRIES for secret in entry["secrets"]}
    | {
        *("password", "password=", "token", '"token": "', "api_key", "x-api-key: ", "secret"),
        *("session_id", "--password ", "--token ", "PWD=", "NextToken=", "secret_key "),
        *('{"name": "DB_PASSWORD", "value": "', '\\"password\\": \\"', "aws_secret_access_key="),
        *("Authorization: ", "authorization=", "Bearer ", "Basic ", "Cookie: ", "set-cookie: "),
        *("AKIA", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "eyJ"),
        *("sk-", "sk-ant-", "xoxb-", "ghp_", "0123456789abcdefghij", "hooks.slack.com/services/"),
        *("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "[REDACTED:token]"),
        *("[REDACTED:", "[REDACTED:jwt]", "://", "https://", "jdbc:postgresql://", "u:p@"),
        *("postgres://u:p@h/db", "@", "@h.co", "jane@example.com", "git@", "10.0.0.1", "1.2.3.4"),
        *("255.", ".0", "fe80::1:2", "::", "::ffff:", ":", "=", ": ", "=>", '"', "'", '\\"'),
        *("\\", "\\n", "\\r\\n", "\n", "\t", " ", ";", ",", "&", "?", "/", ".", "(", ")"),
        *("[", "]", "{", "}", "${X}", "%", "+", "#", "-", "_", "hunter2", "null", "İ", "ß"),
        "connection refused",
    }
)
texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=30).map("".join),
)
# Ordinary words, secret-sounding ones included, and text with no digits, separators, `@`,
# `-` or `_`: no secret can be spelt with these, so nothing may change.
PROSE_WORDS = (
    "password token secret Bearer Authorization Cookie session key connection refused ERROR "
    "timed out the api failed Login"
).split()
prose = st.lists(
    st.one_of(
        st.sampled_from(PROSE_WORDS),
        st.text(alphabet=string.ascii_lowercase + " .,!?'", max_size=12),
    ),
    max_size=30,
).map(" ".join)


@PROPERTY
@given(texts, st.booleans())
def test_redact_never_raises_is_idempotent_and_only_replaces_by_markers(
    text: str, redact_ips: bool
) -> None:
    redacted = redact(text, redact_ips=redact_ips)

    assert redact(redacted, redact_ips=redact_ips) == redacted
    assert only_markers_added(text, redacted)
    assert len(MARKER.sub("", redacted)) <= len(text)
    assert kinds_in(redacted) - kinds_in(text) <= KINDS


@PROPERTY
@given(prose, st.booleans())
def test_secret_free_prose_comes_out_unchanged(text: str, redact_ips: bool) -> None:
    assert redact(text, redact_ips=redact_ips) == text


@PROPERTY
@given(
    st.ip_addresses(),
    st.sampled_from(["from {} port 22", "{}", "[{}]:443", "ip={}.", "\\n{}\\n", '"{}"']),
)
def test_any_ip_address_goes_with_the_setting_and_stays_without(
    address: Any, template: str
) -> None:
    shown = str(address)
    text = template.format(shown)
    # Single-group IPv6 forms (`::1`, `::`) cannot be told from code and are kept by design.
    groups = len([group for group in re.split(r"[:.]", shown) if group])

    assert redact(text) == text
    redacted = redact(text, redact_ips=True)
    if groups >= 2:
        assert shown not in redacted
        assert kinds_in(redacted) == {"ip"}


KEYS = st.sampled_from(["password", "token", "Authorization", "name", "value", "msg"]) | st.text(
    max_size=8
)


@PROPERTY
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_redact_json_is_idempotent_and_keeps_the_shape(value: Any) -> None:
    redacted = redact_json(value)

    assert redact_json(redacted) == redacted
    assert type(redacted) is type(value)
    if isinstance(value, dict):
        assert len(redacted) == len(value)


@PROPERTY
@given(st.lists(st.one_of(texts, st.sampled_from(["\x1e", "\n\x1e\n", "x\x1e", "\n"])), max_size=8))
def test_redacting_many_texts_together_equals_redacting_each(items: list[str]) -> None:
    """`redact_many` (what `redact_json` does with a document's strings) joins the texts; the
    result must never depend on the neighbours, whatever the texts hold (the joint's own
    characters included)."""
    assert redact_many(items) == [redact(item) for item in items]
    assert redact_many(items, redact_ips=True) == [redact(i, redact_ips=True) for i in items]
