"""Whatever bytes a sender posts, the receiver answers 2xx or 4xx and keeps the payload: as
alerts, or as a dead letter named in the answer. Over a real socket, with the group committer
and SQLite behind it (issue 14, item 1)."""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.normalize import MAX_PAYLOAD_BYTES
from tests.integration.test_webhook import Harness, _serve

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "payloads"
FIXTURE_BODIES = sorted(
    path.read_bytes() for path in FIXTURES.rglob("*.json") if path.stat().st_size < 64 * 1024
)
GOOD = {"title": "Checkout latency high", "message": "p99 over 2s", "severity": "HIGH"}
# A sender cutting an emoji in half: a lone high surrogate, escaped as JSON spells it.
SURROGATE = '{"title":"Checkout failing \\ud83d","message":"x","severity":"HIGH"}'
INJECTIONS = [b"\\ud83d", b"\\udc00", b"\\u0000", b"\xed\xa0\xbd"]
ANSWER_TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async for started in _serve(Harness(tmp_path, api_key=None)):
        yield started


def _db(harness: Harness) -> Path:
    return Path(harness.store.path)


def _counts(harness: Harness) -> tuple[int, set[str]]:
    """Occurrences recorded and dead letters kept, read from the database file itself."""
    with sqlite3.connect(_db(harness)) as db:
        (occurrences,) = db.execute("SELECT COUNT(*) FROM occurrences").fetchone()
        letters = {str(row[0]) for row in db.execute("SELECT id FROM dead_letters")}
    return int(occurrences), letters


async def _post(
    session: aiohttp.ClientSession, harness: Harness, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        harness.url("/alerts"), data=body, headers=headers, timeout=ANSWER_TIMEOUT
    ) as resp:
        return resp.status, await resp.json()


# --- the property: any bytes, any Content-Encoding and Content-Type --------------------------


@st.composite
def _mutated_fixture(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(FIXTURE_BODIES)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "duplicate", "surrogate"]))
        at = draw(st.integers(0, max(0, len(body) - 1)))
        if kind == "flip" and body:
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del body[at:]
        elif kind == "duplicate":
            body[at:at] = body[at : at + draw(st.integers(1, 256))]
        else:
            body[at:at] = draw(
                st.sampled_from([b"\\ud83d", b"\\udc00", b"\\u0000", b"\xed\xa0\xbd"])
            )
    return bytes(body)


def _alert_json(title: str) -> bytes:
    return json.dumps({"title": title, "message": title[::-1], "severity": "HIGH"}).encode()


_BODIES = st.one_of(
    st.binary(max_size=512),
    _mutated_fixture(),
    st.text(max_size=80).map(_alert_json),  # lone surrogates and NUL among the titles
)
_ENCODINGS = st.sampled_from(
    [None, "gzip", "x-gzip", "deflate", "br", "identity", "garbage", "gzip, deflate"]
)
_CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "text/plain", "application/octet-stream", "x/;;=", "json"]
)


def _encode(body: bytes, encoding: str | None) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "gzip, deflate":
        return zlib.compress(gzip.compress(body))
    return body


@st.composite
def _requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    encoding = draw(_ENCODINGS)
    body = draw(_BODIES)
    if draw(st.booleans()):  # encoded as the header says, then perhaps corrupted
        body = _encode(body, encoding)
        if body and draw(st.booleans()):
            cut = draw(st.integers(0, len(body) - 1))
            body = body[:cut] + bytes([body[cut] ^ 0xFF]) + body[cut + 1 :]
    headers = {}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    content_type = draw(_CONTENT_TYPES)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return body, headers


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=_requests())
async def test_any_body_is_answered_below_500_and_kept(
    harness: Harness, request: tuple[bytes, dict[str, str]]
):
    body, headers = request
    occurrences_before, letters_before = _counts(harness)

    status, answer = await _post(harness.session, harness, body, headers)

    assert status < 500, (status, answer)
    occurrences, letters = _counts(harness)
    named = set(answer.get("dead_letters", []))
    assert named <= letters
    assert letters - letters_before == named, "a dead letter the answer does not name"
    if status == 202:
        recorded = [o for o in answer.get("outcomes", []) if o["outcome"] != "duplicate"]
        assert occurrences - occurrences_before == len(recorded)
        assert answer.get("outcomes") or named, "accepted, yet neither recorded nor kept"
    else:
        assert occurrences == occurrences_before
        if status == 400:
            assert named, f"a 400 that keeps nothing: {answer}"
        else:
            assert status in (413, 415), (status, answer)
    async with harness.session.get(harness.url("/healthz"), timeout=ANSWER_TIMEOUT) as health:
        assert health.status == 200


# --- defect 1: a lone surrogate ---------------------------------------------------------------


async def test_a_lone_surrogate_is_recorded_with_its_escape_as_sent(harness: Harness):
    status, answer = await harness.post(SURROGATE)

    assert status == 202, answer
    [incident_id] = answer["incidents"]
    incident = harness.store.get_incident(incident_id)
    assert incident is not None
    assert incident.title == "Checkout failing \\ud83d"
    [occurrence] = harness.store.occurrences(incident_id)
    assert occurrence.alert.title == "Checkout failing \\ud83d"


async def test_in_a_batch_the_surrogate_entry_is_recorded_and_a_bad_entry_is_its_own_letter(
    harness: Harness,
):
    batch = f'[{json.dumps(GOOD)}, {SURROGATE}, null, "disk /data is 97% full"]'

    status, answer = await harness.post(batch)

    assert status == 202, answer
    assert answer["alerts"] == 3
    [letter_id] = answer["dead_letters"]
    [letter] = harness.store.dead_letters()
    assert letter.id == letter_id
    assert letter.payload == b"null"
    assert _counts(harness)[0] == 3


async def test_in_an_alertmanager_group_the_good_entries_go_through_beside_the_bad(
    harness: Harness,
):
    def entry(name: str) -> str:
        return json.dumps(
            {"status": "firing", "labels": {"alertname": name}, "startsAt": "2024-01-02T03:04:05Z"}
        )

    surrogate_entry = (
        '{"status":"firing","labels":{"alertname":"Cut \\udc00 emoji"},'
        '"startsAt":"2024-01-02T03:04:05Z"}'
    )
    group = (
        '{"version":"4","status":"firing","receiver":"bot","alerts":['
        f"{entry('DiskFull')},{surrogate_entry},17,{entry('HighLatency')}]}}"
    )

    status, answer = await harness.post(group)

    assert status == 202, answer
    assert answer["alerts"] == 3
    [letter] = harness.store.dead_letters()
    assert answer["dead_letters"] == [letter.id]
    assert letter.payload == b"17"
    titles = {
        occurrence.alert.labels.get("alertname")
        for incident_id in answer["incidents"]
        for occurrence in harness.store.occurrences(incident_id)
    }
    assert titles == {"DiskFull", "Cut \\udc00 emoji", "HighLatency"}


# --- defect 2: a body that does not decode under its Content-Encoding -------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_inflate_is_400_kept_as_it_came(harness: Harness, encoding: str):
    body = b"\x1f\x8b\x08\x00not really gzip" if encoding == "gzip" else b"\x78\x9cnot zlib"

    status, answer = await harness.post(body, **{"Content-Encoding": encoding})

    assert status == 400
    assert f"Content-Encoding {encoding}" in answer["error"]
    [letter] = harness.store.dead_letters()
    assert answer["dead_letters"] == [letter.id]
    assert letter.payload == body


async def test_after_a_bad_gzip_body_the_same_connection_answers_the_next_request(
    harness: Harness,
):
    opened: list[object] = []
    trace = aiohttp.TraceConfig()

    async def on_create(*_: object) -> None:
        opened.append(object())

    trace.on_connection_create_end.append(on_create)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
        bad = await _post(
            session, harness, gzip.compress(b'{"a": 1}')[:-9], {"Content-Encoding": "gzip"}
        )
        good = await _post(session, harness, json.dumps(GOOD).encode(), {})
        zipped = await _post(
            session, harness, gzip.compress(json.dumps(GOOD).encode()), {"Content-Encoding": "gzip"}
        )

    assert bad[0] == 400 and "truncated" in bad[1]["error"]
    assert good[0] == 202 and zipped[0] == 202
    assert zipped[1]["outcomes"][0]["outcome"] == "repeated"
    assert len(opened) == 1, "the connection was dropped after the bad body"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda body: zlib.compress(body)[2:-4]),  # raw deflate, as some send it
        ("gzip, deflate", lambda body: zlib.compress(gzip.compress(body))),
        ("identity", lambda body: body),
    ],
)
async def test_an_encoded_body_is_inflated_and_recorded(harness: Harness, encoding: str, encode):
    status, answer = await harness.post(
        encode(json.dumps(GOOD).encode()), **{"Content-Encoding": encoding}
    )

    assert status == 202, answer
    assert answer["alerts"] == 1


async def test_an_unsupported_encoding_is_415_at_once(harness: Harness):
    status, answer = await harness.post(b"\x0b\x02\x80hello", **{"Content-Encoding": "br"})

    assert status == 415
    assert "br" in answer["error"] and "gzip" in answer["error"]
    assert harness.store.dead_letters() == []


# --- defect 3: decompression is bounded --------------------------------------------------------


async def test_deflate_on_a_large_deeply_nested_body_is_answered_at_once(harness: Harness):
    body = b"[" * 400_000 + b"]" * 400_000
    started = time.monotonic()

    status, answer = await harness.post(body, **{"Content-Encoding": "deflate"})

    assert time.monotonic() - started < 5
    assert status == 400
    assert "Content-Encoding deflate" in answer["error"]
    [letter] = harness.store.dead_letters()
    assert letter.payload == body


async def test_a_compression_bomb_stops_at_the_payload_limit_with_413(harness: Harness):
    bomb = zlib.compress(b"{" + b" " * (8 * MAX_PAYLOAD_BYTES), 9)
    started = time.monotonic()

    status, answer = await harness.post(bomb, **{"Content-Encoding": "deflate"})

    assert time.monotonic() - started < 5
    assert status == 413
    assert str(MAX_PAYLOAD_BYTES) in answer["error"]
    assert harness.store.dead_letters() == []
