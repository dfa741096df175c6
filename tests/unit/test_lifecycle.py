"""The incident lifecycle against a real SQLite store: open, repeat, resolve, reopen, flap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidents.lifecycle import (
    IncidentService,
    OutcomeKind,
)
from incidents.models import AlertStatus, IncidentStatus, TimelineKind
from incidents.sqlite import SqliteStore
from ingest.normalize import parse_body
from tests.conftest import ManualClock, make_alert


def test_first_alert_opens_an_incident_with_a_timeline_event(service, store, clock):
    outcome = service.record(make_alert())

    assert outcome.kind is OutcomeKind.OPENED
    incident = store.get_incident(outcome.incident.id)
    assert incident is not None
    assert incident.status is IncidentStatus.OPEN
    assert incident.occurrences == 1
    assert incident.opened_at == clock.now
    assert incident.id.startswith("INC-") and len(incident.id) == 12
    assert [e.kind for e in store.timeline(incident.id)] == [TimelineKind.OPENED]
    assert len(store.occurrences(incident.id)) == 1


def test_a_resolution_for_no_open_incident_is_kept_but_changes_nothing(service, store):
    outcome = service.record(make_alert(status=AlertStatus.RESOLVED, dedup_key="k1"))

    assert outcome.kind is OutcomeKind.UNMATCHED_RESOLVE
    assert outcome.incident is None
    assert store.has_occurrence("k1")
    assert store.list_incidents() == []
    assert service.record(make_alert(status=AlertStatus.RESOLVED, dedup_key="k1")).kind is (
        OutcomeKind.DUPLICATE
    )


def test_recurrence_soon_after_resolution_reopens_the_same_incident(service, store, clock):
    opened = service.record(make_alert())
    service.acknowledge(opened.incident.id, "U123")
    service.record(make_alert(status=AlertStatus.RESOLVED))
    clock.advance(minutes=20)
    reopened = service.record(make_alert())

    assert reopened.kind is OutcomeKind.REOPENED
    incident = store.get_incident(opened.incident.id)
    assert incident.status is IncidentStatus.OPEN
    assert incident.acknowledged_by is None and incident.resolved_at is None
    assert incident.reopen_count == 1
    assert incident.occurrences == 2, "a resolution is recorded but is not an occurrence"
    assert len(store.occurrences(incident.id)) == 3
    assert store.timeline(incident.id)[-1].detail == "recurred 20m after resolution"


def test_reopens_spread_beyond_the_flap_window_do_not_flap(service, store, clock):
    opened = service.record(make_alert())
    for _ in range(4):
        clock.advance(minutes=40)
        service.record(make_alert(status=AlertStatus.RESOLVED))
        clock.advance(minutes=50)
        service.record(make_alert())

    incident = store.get_incident(opened.incident.id)
    assert incident.reopen_count == 4
    assert incident.flapping is False


def test_acknowledged_incidents_still_count_repeats_and_resolve(service, store):
    opened = service.record(make_alert())
    service.acknowledge(opened.incident.id, "U1")
    assert service.record(make_alert()).kind is OutcomeKind.REPEATED
    assert service.record(make_alert(status=AlertStatus.RESOLVED)).kind is OutcomeKind.RESOLVED


def test_different_fingerprints_are_different_incidents(service, store):
    a = service.record(make_alert(problem="db"))
    b = service.record(make_alert(problem="disk"))

    assert a.incident.id != b.incident.id
    assert len(store.list_incidents()) == 2


def test_two_writers_on_one_database_lose_no_count_and_open_one_incident(tmp_path: Path):
    """Two stores on the same file race through the conditional writes: exactly one incident,
    and every alert counted once."""
    path = tmp_path / "shared.db"
    stores = [SqliteStore(path), SqliteStore(path)]
    services = [IncidentService(s, clock=ManualClock()) for s in stores]
    per_writer = 150
    barrier = threading.Barrier(len(services))
    errors: list[BaseException] = []

    def hammer(index: int) -> None:
        barrier.wait()
        try:
            for n in range(per_writer):
                services[index].record(make_alert(dedup_key=f"w{index}-{n}"))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(services))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    incidents = stores[0].list_incidents()
    assert len(incidents) == 1
    assert incidents[0].occurrences == per_writer * len(services)
    for opened in stores:
        opened.close()


def test_a_group_incident_resolves_when_its_last_member_does(service, store):
    opened = service.record(make_alert(member="host-a"))
    service.record(make_alert(member="host-b"))
    service.record(make_alert(member="host-c"))

    partial = service.record(make_alert(status=AlertStatus.RESOLVED, member="host-a"))
    assert partial.kind is OutcomeKind.MEMBER_RESOLVED
    assert partial.incident.firing_members == ["host-b", "host-c"]
    assert partial.incident.status is IncidentStatus.OPEN

    service.record(make_alert(status=AlertStatus.RESOLVED, member="host-b"))
    final = service.record(make_alert(status=AlertStatus.RESOLVED, member="host-c"))
    assert final.kind is OutcomeKind.RESOLVED
    incident = store.get_incident(opened.incident.id)
    assert incident.status is IncidentStatus.RESOLVED
    assert incident.firing_members == []
    assert incident.occurrences == 3


def test_a_member_firing_again_after_resolution_reopens_with_only_itself(service, store, clock):
    opened = service.record(make_alert(member="host-a"))
    service.record(make_alert(status=AlertStatus.RESOLVED, member="host-a"))
    clock.advance(minutes=2)
    reopened = service.record(make_alert(member="host-b"))

    assert reopened.kind is OutcomeKind.REOPENED
    assert reopened.incident.id == opened.incident.id
    assert reopened.incident.firing_members == ["host-b"]


def test_silence_mutes_the_fingerprint_for_a_while(service, store, clock):
    opened = service.record(make_alert())
    silence = service.silence(opened.incident.id, timedelta(hours=1), "U5")

    assert silence.until == clock.now + timedelta(hours=1)
    assert service.silenced_until(opened.incident.fingerprint) == silence.until
    assert store.timeline(opened.incident.id)[-1].detail == "silenced for 1h"
    assert service.record(make_alert()).incident.occurrences == 2

    clock.advance(minutes=61)
    assert service.silenced_until(opened.incident.fingerprint) is None


def test_an_incident_keeps_the_template_its_text_keyed_alert_was_grouped_by(service, store):
    """What the message shows as "Grouped by template", stored with the incident (issue 16)."""
    body = b"PacketResponder 1 for block blk_38865049064139660 terminating"
    [alert] = parse_body(body, datetime.now(UTC)).alerts

    outcome = service.record(alert)

    assert alert.template == "PacketResponder <*> for block <*> terminating"
    assert outcome.incident is not None
    assert store.get_incident(outcome.incident.id).template == alert.template


def test_the_confirmed_cause_and_fix_are_kept_merged_and_in_the_timeline(service, store, clock):
    incident = service.record(make_alert()).incident
    service.resolve(incident.id, "U1")
    clock.advance(minutes=5)

    service.confirm(incident.id, "U1", cause="  pool size   was 10 after the config change ")
    clock.advance(minutes=1)
    confirmed = service.confirm(incident.id, "U2", fix="raised max_connections to 200")

    assert confirmed.status is IncidentStatus.RESOLVED
    assert confirmed.confirmed is not None
    assert confirmed.confirmed.cause == "pool size was 10 after the config change"
    assert confirmed.confirmed.fix == "raised max_connections to 200"
    assert (confirmed.confirmed.by, confirmed.confirmed.at) == ("U2", clock())
    assert store.get_incident(incident.id) == confirmed
    events = [e for e in store.timeline(incident.id) if e.kind is TimelineKind.CONFIRMED]
    assert [(e.actor, e.detail) for e in events] == [
        ("U1", "cause: pool size was 10 after the config change"),
        ("U2", "fix: raised max_connections to 200"),
    ]


def test_a_blank_confirmation_is_refused_and_changes_nothing(service, store):
    incident = service.record(make_alert()).incident
    with pytest.raises(ValueError, match="needs a cause, a fix, or both"):
        service.confirm(incident.id, "U1", cause="  ", fix=None)
    assert store.get_incident(incident.id) == incident


def test_the_modal_replaces_both_so_an_erased_field_is_gone(service):
    incident = service.record(make_alert()).incident
    service.confirm(incident.id, "U1", cause="a wrong guess", fix="restart")

    replaced = service.confirm(incident.id, "U2", fix="raised the pool", replace=True)

    assert replaced.confirmed is not None
    assert (replaced.confirmed.cause, replaced.confirmed.fix) == (None, "raised the pool")
