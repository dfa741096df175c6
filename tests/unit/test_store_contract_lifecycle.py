"""IncidentStore as the lifecycle uses it: IncidentService on both backends, one alert at a
time and in the batches a group commit hands it; on DynamoDB, two replicas racing. SQLite-only
lifecycle behaviour (two processes on one file) is in test_lifecycle.py."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from incidents.dynamodb import DynamoStore
from incidents.lifecycle import (
    IncidentNotFoundError,
    IncidentService,
    InvalidTransitionError,
    OutcomeKind,
)
from incidents.models import AlertStatus, IncidentStatus, Severity, TimelineKind
from tests.conftest import ManualClock, make_alert
from tests.fakes.moto_server import aws, moto_server, serialized_aws  # noqa: F401
from tests.unit.store_contract import any_store, service  # noqa: F401


def test_first_alert_opens_an_incident_with_a_timeline_event(service, any_store, clock):
    outcome = service.record(make_alert())

    assert outcome.kind is OutcomeKind.OPENED
    incident = any_store.get_incident(outcome.incident.id)
    assert incident == outcome.incident
    assert incident.status is IncidentStatus.OPEN
    assert incident.opened_at == clock.now
    assert [e.kind for e in any_store.timeline(incident.id)] == [TimelineKind.OPENED]
    assert len(any_store.occurrences(incident.id)) == 1
    assert any_store.head_incident(incident.fingerprint) == incident


def test_repeats_are_counted_and_move_last_seen_without_timeline_noise(service, any_store, clock):
    first = service.record(make_alert())
    clock.advance(minutes=3)
    second = service.record(make_alert())
    third = service.record(make_alert())

    assert [second.kind, third.kind] == [OutcomeKind.REPEATED, OutcomeKind.REPEATED]
    incident = any_store.get_incident(first.incident.id)
    assert incident.occurrences == 3
    assert incident.last_seen_at == clock.now
    assert incident.opened_at < incident.last_seen_at
    assert len(any_store.timeline(incident.id)) == 1
    assert len(any_store.occurrences(incident.id)) == 3


def test_a_worse_repeat_raises_the_severity(service, any_store):
    opened = service.record(make_alert(severity=Severity.MEDIUM))
    service.record(make_alert(severity=Severity.CRITICAL))
    service.record(make_alert(severity=Severity.LOW))

    incident = any_store.get_incident(opened.incident.id)
    assert incident.severity is Severity.CRITICAL
    events = any_store.timeline(incident.id)
    assert [e.kind for e in events] == [TimelineKind.OPENED, TimelineKind.SEVERITY_RAISED]
    assert events[1].detail == "MEDIUM -> CRITICAL"


def test_a_redelivered_alert_counts_once(service, any_store):
    opened = service.record(make_alert(dedup_key="sns:abc"))
    again = service.record(make_alert(dedup_key="sns:abc"))

    assert again.kind is OutcomeKind.DUPLICATE
    assert any_store.get_incident(opened.incident.id).occurrences == 1


def test_a_resolved_alert_resolves_its_incident(service, any_store, clock):
    opened = service.record(make_alert())
    clock.advance(minutes=12)
    resolved = service.record(make_alert(status=AlertStatus.RESOLVED))

    assert resolved.kind is OutcomeKind.RESOLVED
    incident = any_store.get_incident(opened.incident.id)
    assert incident.status is IncidentStatus.RESOLVED
    assert incident.resolved_at == clock.now
    assert incident.resolved_by == "alert:test"
    assert any_store.timeline(incident.id)[-1].detail == "resolved after 12m"


def test_a_resolution_for_no_open_incident_is_kept_but_changes_nothing(service, any_store):
    outcome = service.record(make_alert(status=AlertStatus.RESOLVED, dedup_key="k1"))

    assert outcome.kind is OutcomeKind.UNMATCHED_RESOLVE
    assert any_store.has_occurrence("k1")
    assert any_store.list_incidents() == []
    again = service.record(make_alert(status=AlertStatus.RESOLVED, dedup_key="k1"))
    assert again.kind is OutcomeKind.DUPLICATE


def test_recurrence_soon_after_resolution_reopens_the_same_incident(service, any_store, clock):
    opened = service.record(make_alert())
    service.acknowledge(opened.incident.id, "U123")
    service.record(make_alert(status=AlertStatus.RESOLVED))
    clock.advance(minutes=20)
    reopened = service.record(make_alert())

    assert reopened.kind is OutcomeKind.REOPENED
    incident = any_store.get_incident(opened.incident.id)
    assert incident.status is IncidentStatus.OPEN
    assert incident.acknowledged_by is None and incident.resolved_at is None
    assert incident.reopen_count == 1
    assert incident.occurrences == 2
    assert len(any_store.occurrences(incident.id)) == 3
    assert any_store.timeline(incident.id)[-1].detail == "recurred 20m after resolution"


def test_recurrence_after_the_reopen_window_opens_a_new_incident(service, any_store, clock):
    first = service.record(make_alert())
    service.record(make_alert(status=AlertStatus.RESOLVED))
    clock.advance(hours=2)
    second = service.record(make_alert())

    assert second.kind is OutcomeKind.OPENED
    assert second.incident.id != first.incident.id
    assert any_store.head_incident(second.incident.fingerprint).id == second.incident.id
    assert any_store.get_incident(first.incident.id).status is IncidentStatus.RESOLVED
    assert [i.id for i in any_store.list_incidents()] == [second.incident.id, first.incident.id]


def test_reopening_three_times_within_the_window_marks_it_flapping(service, any_store, clock):
    opened = service.record(make_alert())
    for _ in range(3):
        clock.advance(minutes=5)
        service.record(make_alert(status=AlertStatus.RESOLVED))
        clock.advance(minutes=5)
        service.record(make_alert())

    incident = any_store.get_incident(opened.incident.id)
    assert incident.flapping is True
    assert incident.reopen_count == 3
    kinds = [e.kind for e in any_store.timeline(incident.id)]
    assert kinds.count(TimelineKind.FLAPPING) == 1
    assert kinds.index(TimelineKind.FLAPPING) == len(kinds) - 1


def test_acknowledge_records_who_and_is_idempotent(service, any_store, clock):
    opened = service.record(make_alert())
    clock.advance(minutes=4)
    acked = service.acknowledge(opened.incident.id, "U042")
    again = service.acknowledge(opened.incident.id, "U099")

    assert acked.status is IncidentStatus.ACKNOWLEDGED
    assert again.acknowledged_by == "U042"
    assert acked.acknowledged_at == clock.now
    events = any_store.timeline(opened.incident.id)
    assert [(e.kind, e.actor) for e in events][-1] == (TimelineKind.ACKNOWLEDGED, "U042")
    assert events[-1].detail == "acknowledged after 4m"
    assert len(events) == 2


def test_manual_resolve_and_invalid_transitions(service, any_store):
    opened = service.record(make_alert())
    resolved = service.resolve(opened.incident.id, "U7")

    assert resolved.status is IncidentStatus.RESOLVED and resolved.resolved_by == "U7"
    assert service.resolve(opened.incident.id, "U8").resolved_by == "U7"
    with pytest.raises(InvalidTransitionError):
        service.acknowledge(opened.incident.id, "U9")
    with pytest.raises(IncidentNotFoundError):
        service.acknowledge("INC-NOPE", "U9")


def test_a_group_incident_resolves_when_its_last_member_does(service, any_store):
    opened = service.record(make_alert(member="host-a"))
    service.record(make_alert(member="host-b"))
    partial = service.record(make_alert(status=AlertStatus.RESOLVED, member="host-a"))
    assert partial.kind is OutcomeKind.MEMBER_RESOLVED
    assert partial.incident.firing_members == ["host-b"]

    final = service.record(make_alert(status=AlertStatus.RESOLVED, member="host-b"))
    assert final.kind is OutcomeKind.RESOLVED
    assert any_store.get_incident(opened.incident.id).status is IncidentStatus.RESOLVED


def test_silence_mutes_the_fingerprint_for_a_while(service, any_store, clock):
    opened = service.record(make_alert())
    silence = service.silence(opened.incident.id, timedelta(hours=1), "U5")

    assert service.silenced_until(opened.incident.fingerprint) == silence.until
    assert any_store.timeline(opened.incident.id)[-1].detail == "silenced for 1h"
    assert any_store.unsynced_incidents(clock.now) == []
    clock.advance(minutes=61)
    assert service.silenced_until(opened.incident.fingerprint) is None
    assert [i.id for i in any_store.unsynced_incidents(clock.now)] == [opened.incident.id]


def test_heads_and_recorded_keys_read_a_whole_batch_at_once(any_store, service):
    first = service.record(make_alert(problem="a", dedup_key="k-a"))
    second = service.record(make_alert(problem="b", dedup_key="k-b"))
    assert first.incident is not None and second.incident is not None

    heads = any_store.heads([first.alert.fingerprint, second.alert.fingerprint, "fp-none"])

    assert heads == {
        first.alert.fingerprint: any_store.get_incident(first.incident.id),
        second.alert.fingerprint: any_store.get_incident(second.incident.id),
    }
    assert any_store.recorded_keys(["k-a", "k-b", "k-none"]) == {"k-a", "k-b"}
    assert any_store.heads([]) == {} and any_store.recorded_keys([]) == set()


def test_a_batch_folds_each_incidents_alerts_into_one_write(any_store, service):
    alerts = [make_alert(problem=f"p{n % 3}", dedup_key=f"k{n}") for n in range(30)]
    alerts[7] = make_alert(problem="p1", dedup_key="k7", severity=Severity.CRITICAL)

    outcomes = service.record_batch(alerts)

    assert [o.kind for o in outcomes[:3]] == [OutcomeKind.OPENED] * 3
    assert {o.kind for o in outcomes[3:]} == {OutcomeKind.REPEATED}
    incidents = {i.fingerprint: i for i in any_store.list_incidents()}
    assert sorted(i.occurrences for i in incidents.values()) == [10, 10, 10]
    raised = incidents[alerts[1].fingerprint]
    assert raised.severity is Severity.CRITICAL
    assert [e.kind for e in any_store.timeline(raised.id)] == [
        TimelineKind.OPENED,
        TimelineKind.SEVERITY_RAISED,
    ]
    assert raised.version == 1, "one write per incident: created once, never updated"
    assert len(any_store.occurrences(raised.id, limit=100)) == 10
    # Each outcome reports the incident after the write that counted it.
    assert outcomes[-1].incident is not None and outcomes[-1].incident.occurrences == 10


def test_a_batch_counts_a_key_once_whether_seen_before_or_within_it(any_store, service):
    service.record(make_alert(dedup_key="seen"))

    outcomes = service.record_batch(
        [make_alert(dedup_key="seen"), make_alert(dedup_key="new"), make_alert(dedup_key="new")]
    )

    assert [o.kind for o in outcomes] == [
        OutcomeKind.DUPLICATE,
        OutcomeKind.REPEATED,
        OutcomeKind.DUPLICATE,
    ]
    assert outcomes[2].incident is not None and outcomes[2].incident.id == outcomes[1].incident.id
    [incident] = any_store.list_incidents()
    assert incident.occurrences == 2


def test_a_batch_keeps_the_order_of_one_problems_changes(any_store, service, clock):
    firing = make_alert(problem="flappy", dedup_key="f1")
    resolved = make_alert(problem="flappy", dedup_key="r1", status=AlertStatus.RESOLVED)
    again = make_alert(problem="flappy", dedup_key="r2", status=AlertStatus.RESOLVED)
    back = make_alert(problem="flappy", dedup_key="f2")

    outcomes = service.record_batch([firing, resolved, again, back])

    assert [o.kind for o in outcomes] == [
        OutcomeKind.OPENED,
        OutcomeKind.RESOLVED,
        OutcomeKind.UNMATCHED_RESOLVE,
        OutcomeKind.REOPENED,
    ]
    [incident] = any_store.list_incidents()
    assert incident.status is IncidentStatus.OPEN and incident.reopen_count == 1
    assert [e.kind for e in any_store.timeline(incident.id)] == [
        TimelineKind.OPENED,
        TimelineKind.RESOLVED,
        TimelineKind.REOPENED,
    ]
    assert any_store.recorded_keys(["f1", "r1", "r2", "f2"]) == {"f1", "r1", "r2", "f2"}


def test_a_storm_of_one_problem_is_written_in_chunks_each_atomic(any_store, service):
    outcomes = service.record_batch([make_alert(dedup_key=f"k{n}") for n in range(60)])

    [incident] = any_store.list_incidents()
    assert incident.occurrences == 60
    assert len(any_store.occurrences(incident.id, limit=100)) == 60
    assert incident.version == 3, "60 alerts in writes of at most 25"
    assert outcomes[-1].incident == incident


def test_a_batch_whose_head_moved_meanwhile_is_planned_again(any_store, clock):
    """Another replica wrote the incident between this batch's read and its write."""
    ours = IncidentService(any_store, clock=clock)
    theirs = IncidentService(any_store, clock=clock)
    ours.record(make_alert(dedup_key="k0"))
    stale_heads = any_store.heads
    raced = False

    def heads_then_race(fingerprints):
        nonlocal raced
        found = stale_heads(fingerprints)
        if not raced:
            raced = True
            theirs.record(make_alert(dedup_key="theirs"))
        return found

    any_store.heads = heads_then_race
    outcomes = ours.record_batch([make_alert(dedup_key=f"k{n}") for n in range(1, 6)])

    assert {o.kind for o in outcomes} == {OutcomeKind.REPEATED}
    [incident] = any_store.list_incidents()
    assert incident.occurrences == 7


def test_a_batch_of_large_alerts_is_split_to_fit_the_backends_write(any_store, service):
    """DynamoDB takes 4 MB a transaction: twenty alerts of 300 KB go in writes of their own."""
    large = [
        make_alert(dedup_key=f"k{n}").model_copy(update={"raw": "x" * 300_000}) for n in range(20)
    ]

    outcomes = service.record_batch(large)

    assert outcomes[0].kind is OutcomeKind.OPENED
    [incident] = any_store.list_incidents()
    assert incident.occurrences == 20
    stored = any_store.occurrences(incident.id, limit=100)
    assert len(stored) == 20 and {len(o.alert.raw) for o in stored} == {300_000}


def test_two_replicas_lose_no_count_and_open_one_incident(serialized_aws):  # noqa: F811
    """Two stores (two clients: two replicas) race through the conditional transactions on a
    moto that, like DynamoDB, applies one request at a time: one incident, and every alert
    recorded exactly once. Lost races are retried with jittered backoff, so none gives up."""
    prefix = f"race-{uuid.uuid4().hex[:8]}"
    stores = [DynamoStore(table_prefix=prefix) for _ in range(2)]
    stores[0].create_tables()
    services = [IncidentService(s, clock=ManualClock()) for s in stores]
    per_writer = 40
    barrier = threading.Barrier(len(services))
    recorded = [0] * len(services)
    errors: list[BaseException] = []

    def hammer(index: int) -> None:
        barrier.wait()
        for n in range(per_writer):
            try:
                services[index].record(make_alert(dedup_key=f"w{index}-{n}"))
            except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
                errors.append(exc)
            else:
                recorded[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(services))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(recorded) == per_writer * len(services)
    [incident] = stores[0].list_incidents()
    assert incident.occurrences == sum(recorded)
    assert len(stores[1].occurrences(incident.id, limit=1000)) == sum(recorded)
    for opened in stores:
        opened.close()
