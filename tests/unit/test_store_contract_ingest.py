"""IngestStore on both backends: a batch's failed write undone alone, dead letters kept
whole, the ping, and the Ingestor's answers when the store refuses part of a batch."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from incidents.lifecycle import OutcomeKind
from incidents.models import DeadLetter, Occurrence
from incidents.store import ConflictError, StoreError
from ingest.pipeline import Ingestor, IngestReport
from tests.conftest import T0, make_alert
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import any_store, make_incident, open_incident, service  # noqa: F401

PAYLOADS = (
    Path(__file__).resolve().parent.parent / "fixtures" / "payloads" / "prometheus-alertmanager"
)


def test_a_failed_write_inside_a_batch_is_undone_alone(any_store):
    with any_store.batch():
        open_incident(any_store, make_incident("INC-A"))
        with pytest.raises(ConflictError):
            open_incident(any_store, make_incident("INC-B"))
        any_store.put_occurrence(Occurrence(key="k2", incident_id=None, alert=make_alert()))

    assert any_store.get_incident("INC-A") is not None
    assert any_store.get_incident("INC-B") is None
    assert any_store.has_occurrence("k2")


def test_dead_letters_keep_the_exact_bytes(any_store):
    payload = b"\x89PNG\r\n\x1a\n\x00binary"
    any_store.put_dead_letter(
        DeadLetter(
            id="d1", received_at=T0, origin="test", reason="binary", size=12, payload=payload
        )
    )

    [letter] = any_store.dead_letters()
    assert letter.payload == payload
    assert letter.reason == "binary"
    assert letter.received_at == T0 and letter.origin == "test" and letter.size == 12


def test_a_one_mebibyte_dead_letter_is_kept_whole_and_letters_are_newest_first(any_store):
    big = os.urandom(1 << 20)
    for n, payload in enumerate([b"first", big, b""]):
        any_store.put_dead_letter(
            DeadLetter(
                id=f"d{n}",
                received_at=T0 + timedelta(minutes=n),
                origin="webhook",
                reason="unparseable",
                size=len(payload),
                payload=payload,
            )
        )

    letters = any_store.dead_letters()
    assert [d.id for d in letters] == ["d2", "d1", "d0"]
    assert letters[1].payload == big and letters[1].reason == "unparseable"
    assert letters[0].payload == b"" and letters[2].payload == b"first"
    assert [d.id for d in any_store.dead_letters(limit=1)] == ["d2"]


def test_ping_answers(any_store):
    any_store.ping()


def test_a_batch_that_fails_part_way_answers_what_was_recorded(any_store, service):
    """A write the store fails (not a lost race) fails only the payloads it holds: what was
    written beside it is answered as recorded, never told to retry into a duplicate."""
    ingestor = Ingestor(service, any_store)
    good = ingestor.parse(json.dumps({"title": "Disk full", "severity": "HIGH"}).encode(), "t")
    bad = ingestor.parse(json.dumps({"title": "Queue stuck", "severity": "LOW"}).encode(), "t")
    assert good.result is not None and bad.result is not None
    broken = bad.result.alerts[0].fingerprint
    write = any_store.write

    def failing(change):
        if change.incident.fingerprint == broken:
            raise StoreError("the disk is on fire")
        write(change)

    any_store.write = failing
    answers = ingestor.commit([good, bad])

    assert isinstance(answers[0], IngestReport)
    assert answers[0].outcomes[0].kind is OutcomeKind.OPENED
    assert isinstance(answers[1], StoreError) and "on fire" in str(answers[1])
    [incident] = any_store.list_incidents()
    assert incident.title == "Disk full" and incident.occurrences == 1


def test_one_alert_the_store_refuses_is_kept_alone_and_its_group_goes_through(any_store, service):
    """An Alertmanager group whose one alert the store cannot take (the way a lone surrogate
    once failed serialisation): the other alerts are recorded, the refused one is kept as its
    own dead letter holding its own part of the payload, and the sender gets a 2xx answer."""
    ingestor = Ingestor(service, any_store)
    body = (
        PAYLOADS / "prometheus-msteams_alert_testdata_prom_post_request_2_alerts.json"
    ).read_bytes()
    parsed = ingestor.parse(body, "alertmanager")
    assert parsed.result is not None and len(parsed.result.alerts) == 2
    poisoned, healthy = parsed.result.alerts
    write = any_store.write

    def refusing(change):
        if any(o.alert.fingerprint == poisoned.fingerprint for o in change.occurrences):
            raise ValueError("cannot serialise this alert")
        write(change)

    any_store.write = refusing
    [answer] = ingestor.commit_isolating([parsed])

    assert isinstance(answer, IngestReport)
    assert [o.alert.fingerprint for o in answer.outcomes] == [healthy.fingerprint]
    assert "cannot serialise this alert" in answer.rejections[-1].reason
    [letter] = any_store.dead_letters()
    assert letter.id in answer.dead_letter_ids
    assert json.loads(letter.payload) == poisoned.raw
    [incident] = any_store.list_incidents()
    assert incident.fingerprint == healthy.fingerprint
