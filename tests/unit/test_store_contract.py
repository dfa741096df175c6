"""Both Store backends keep one contract: every test here runs against SQLite and against the
DynamoDB backend on moto's server. SQLite-only behaviour (schema version, WAL, one batch
rolled back whole, two processes on one file) stays in test_sqlite_store.py and
test_lifecycle.py; moto does not isolate concurrent DynamoDB requests (DESIGN.md), so the
multi-writer race is not repeated here."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest

from incidents.dynamodb import DynamoStore
from incidents.lifecycle import (
    IncidentNotFoundError,
    IncidentService,
    InvalidTransitionError,
    LifecyclePolicy,
    OutcomeKind,
)
from incidents.models import (
    Alert,
    AlertStatus,
    DeadLetter,
    Delivery,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    MessageRef,
    Occurrence,
    Severity,
    Silence,
    TicketRef,
    TimelineEvent,
    TimelineKind,
)
from incidents.sqlite import SqliteStore
from incidents.store import (
    AnalysisRecord,
    ConflictError,
    DuplicateOccurrenceError,
    IncidentWrite,
    LeaseGrant,
    Store,
    StoreError,
)
from ingest.pipeline import Ingestor, IngestReport
from tests.conftest import T0, ManualClock, make_alert
from tests.fakes.moto_server import aws, moto_server, serialized_aws  # noqa: F401

PAYLOADS = (
    Path(__file__).resolve().parent.parent / "fixtures" / "payloads" / "prometheus-alertmanager"
)


@pytest.fixture(params=["sqlite", "dynamodb"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend: a new SQLite file, or new tables under a unique prefix."""
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "incidents.db")
    else:
        request.getfixturevalue("aws")
        dynamo = DynamoStore(table_prefix=f"test-{uuid.uuid4().hex[:8]}")
        dynamo.create_tables()
        opened = dynamo
    yield opened
    opened.close()


@pytest.fixture
def service(any_store: Store, clock: ManualClock) -> IncidentService:
    policy = LifecyclePolicy(
        reopen_window=timedelta(hours=1), flap_threshold=3, flap_window=timedelta(hours=1)
    )
    return IncidentService(any_store, policy, clock=clock)


def _incident(incident_id: str = "INC-A", version: int = 1, **changes: object) -> Incident:
    base = Incident(
        id=incident_id,
        fingerprint="fp1",
        title="t",
        source="test",
        severity=Severity.HIGH,
        opened_at=T0,
        last_seen_at=T0,
        version=version,
    )
    return base.model_copy(update=changes)


def _open(store: Store, incident: Incident, previous_head: str | None = None) -> None:
    store.write(
        IncidentWrite(
            incident=incident, expected_version=None, claims_head=True, previous_head=previous_head
        )
    )


def _event(incident_id: str, kind: TimelineKind, detail: str = "") -> TimelineEvent:
    return TimelineEvent(incident_id=incident_id, at=T0, actor="bot", kind=kind, detail=detail)


# -- conditional writes -------------------------------------------------------------------


def test_a_stale_version_is_refused(any_store):
    _open(any_store, _incident())
    any_store.write(IncidentWrite(incident=_incident(version=2, occurrences=2), expected_version=1))

    with pytest.raises(ConflictError):
        any_store.write(
            IncidentWrite(incident=_incident(version=2, occurrences=9), expected_version=1)
        )
    assert any_store.get_incident("INC-A").occurrences == 2


def test_an_update_of_a_missing_incident_and_a_second_creation_conflict(any_store):
    with pytest.raises(ConflictError):
        any_store.write(IncidentWrite(incident=_incident(version=2), expected_version=1))
    assert any_store.get_incident("INC-A") is None

    any_store.write(IncidentWrite(incident=_incident(), expected_version=None))
    with pytest.raises(ConflictError):
        any_store.write(IncidentWrite(incident=_incident(), expected_version=None))


def test_a_second_opening_for_the_same_fingerprint_loses_the_head_race(any_store):
    _open(any_store, _incident("INC-A"))

    with pytest.raises(ConflictError):
        _open(any_store, _incident("INC-B"), previous_head=None)
    assert any_store.get_incident("INC-B") is None
    with pytest.raises(ConflictError):
        _open(any_store, _incident("INC-B"), previous_head="INC-OTHER")
    _open(any_store, _incident("INC-B"), previous_head="INC-A")
    assert any_store.head_incident("fp1").id == "INC-B"
    assert any_store.head_incident("fp-none") is None


def test_a_duplicate_occurrence_undoes_the_whole_write(any_store):
    _open(any_store, _incident())
    occurrence = Occurrence(key="k", incident_id="INC-A", alert=make_alert())
    any_store.write(
        IncidentWrite(incident=_incident(version=2), expected_version=1, occurrences=(occurrence,))
    )

    with pytest.raises(DuplicateOccurrenceError):
        any_store.write(
            IncidentWrite(
                incident=_incident(version=3, occurrences=5),
                expected_version=2,
                occurrences=(occurrence,),
                events=(_event("INC-A", TimelineKind.ACKNOWLEDGED),),
            )
        )
    assert any_store.get_incident("INC-A").version == 2
    assert any_store.timeline("INC-A") == []


def test_a_failed_write_inside_a_batch_is_undone_alone(any_store):
    with any_store.batch():
        _open(any_store, _incident("INC-A"))
        with pytest.raises(ConflictError):
            _open(any_store, _incident("INC-B"))
        any_store.put_occurrence(Occurrence(key="k2", incident_id=None, alert=make_alert()))

    assert any_store.get_incident("INC-A") is not None
    assert any_store.get_incident("INC-B") is None
    assert any_store.has_occurrence("k2")


def test_put_occurrence_counts_a_key_once(any_store):
    occurrence = Occurrence(key="k1", incident_id=None, alert=make_alert())

    assert any_store.put_occurrence(occurrence) is True
    assert any_store.put_occurrence(occurrence) is False
    assert any_store.has_occurrence("k1")
    assert not any_store.has_occurrence("k2")


# -- queries ------------------------------------------------------------------------------


def test_list_incidents_filters_by_status_and_time_newest_first(any_store):
    for n in range(4):
        status = IncidentStatus.RESOLVED if n % 2 else IncidentStatus.OPEN
        incident = _incident(f"INC-{n}", fingerprint=f"fp{n}", status=status)
        _open(any_store, incident.model_copy(update={"opened_at": T0 + timedelta(hours=n)}))

    assert [i.id for i in any_store.list_incidents()] == ["INC-3", "INC-2", "INC-1", "INC-0"]
    assert [i.id for i in any_store.list_incidents(statuses=[IncidentStatus.OPEN])] == [
        "INC-2",
        "INC-0",
    ]
    both = [IncidentStatus.OPEN, IncidentStatus.RESOLVED]
    assert [i.id for i in any_store.list_incidents(statuses=both, limit=3)] == [
        "INC-3",
        "INC-2",
        "INC-1",
    ]
    since = T0 + timedelta(hours=2)
    assert [i.id for i in any_store.list_incidents(since=since, limit=1)] == ["INC-3"]
    assert [i.id for i in any_store.list_incidents(since=since)] == ["INC-3", "INC-2"]


def test_list_incidents_follows_a_status_change(any_store):
    _open(any_store, _incident())
    any_store.write(
        IncidentWrite(
            incident=_incident(version=2, status=IncidentStatus.RESOLVED), expected_version=1
        )
    )

    assert any_store.list_incidents(statuses=[IncidentStatus.OPEN]) == []
    assert [i.id for i in any_store.list_incidents(statuses=[IncidentStatus.RESOLVED])] == ["INC-A"]


def test_occurrences_are_newest_first_and_limited(any_store):
    _open(any_store, _incident())
    for n in range(3):
        alert = make_alert().model_copy(update={"received_at": T0 + timedelta(minutes=n)})
        any_store.put_occurrence(Occurrence(key=f"k{n}", incident_id="INC-A", alert=alert))
    any_store.put_occurrence(Occurrence(key="other", incident_id="INC-B", alert=make_alert()))

    found = any_store.occurrences("INC-A")
    assert [o.key for o in found] == ["k2", "k1", "k0"]
    assert found[0].alert.received_at == T0 + timedelta(minutes=2)
    assert found[0].alert.raw == {"title": "Database connection failed"}
    assert [o.key for o in any_store.occurrences("INC-A", limit=2)] == ["k2", "k1"]


def test_a_large_alert_is_kept(any_store):
    raw = {"lines": [f"ERROR line {n}: connection refused" for n in range(20_000)]}
    alert = make_alert().model_copy(update={"raw": raw})
    any_store.put_occurrence(Occurrence(key="big", incident_id="INC-A", alert=alert))

    [found] = any_store.occurrences("INC-A")
    assert found.alert.raw == raw


def test_the_timeline_is_oldest_first_in_write_order(any_store):
    opened = _event("INC-A", TimelineKind.OPENED)
    any_store.write(IncidentWrite(incident=_incident(), expected_version=None, events=(opened,)))
    later = (_event("INC-A", TimelineKind.REOPENED), _event("INC-A", TimelineKind.FLAPPING))
    any_store.write(IncidentWrite(incident=_incident(version=2), expected_version=1, events=later))

    kinds = [e.kind for e in any_store.timeline("INC-A")]
    assert kinds == [TimelineKind.OPENED, TimelineKind.REOPENED, TimelineKind.FLAPPING]
    assert any_store.timeline("INC-B") == []


# -- dead letters -------------------------------------------------------------------------


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


# -- analyses -----------------------------------------------------------------------------


def _record(**changes: object) -> AnalysisRecord:
    base = AnalysisRecord(
        incident_id="INC-A",
        fingerprint="fp1",
        source="cloudwatch",
        prompt_version="v1",
        created_at=T0,
        analyzer="claude",
        model="claude-sonnet-4-6",
        cached=False,
        cost_usd=0.012,
        body='{"root_cause": "x"}',
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_newest_analysis_of_an_incident_is_the_latest(any_store):
    any_store.put_analysis(_record(body="first"))
    any_store.put_analysis(_record(body="second", model=None, analyzer="offline"))

    latest = any_store.latest_analysis("INC-A")
    assert latest == _record(body="second", model=None, analyzer="offline")
    assert any_store.latest_analysis("INC-B") is None


def test_the_analysis_cache_honours_prompt_version_and_age(any_store):
    any_store.put_cached_analysis(_record(body="old"))
    any_store.put_cached_analysis(_record(body="new", created_at=T0 + timedelta(hours=1)))

    assert any_store.cached_analysis("fp1", "v1", not_before=T0).body == "new"
    assert any_store.cached_analysis("fp1", "v2", not_before=T0) is None
    assert any_store.cached_analysis("fp1", "v1", not_before=T0 + timedelta(hours=2)) is None


def test_cost_totals_per_day_and_source(any_store):
    day2 = T0 + timedelta(days=1)
    any_store.put_analysis(_record(cost_usd=0.01))
    any_store.put_analysis(_record(cost_usd=0.02))
    any_store.put_analysis(_record(cost_usd=0.0, cached=True))
    any_store.put_analysis(_record(source="prometheus", cost_usd=0.0, analyzer="offline"))
    any_store.put_analysis(_record(created_at=day2, cost_usd=0.5))
    any_store.put_analysis(_record(created_at=T0 - timedelta(days=3), cost_usd=9.0))

    totals = any_store.cost_totals(since=T0 - timedelta(days=1))

    assert [(t.day, t.source, t.analyses, t.model_calls, t.cached) for t in totals] == [
        ("2026-11-24", "cloudwatch", 3, 2, 1),
        ("2026-11-24", "prometheus", 1, 0, 0),
        ("2026-11-25", "cloudwatch", 1, 1, 0),
    ]
    assert totals[0].cost_usd == pytest.approx(0.03)
    assert any_store.cost_totals(since=day2)[0].cost_usd == pytest.approx(0.5)


# -- period figures ------------------------------------------------------------------------

PERIOD_SINCE = T0
PERIOD_UNTIL = T0 + timedelta(hours=24)


def _at(hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def seed_period(store: Store) -> None:
    """Incidents in their final state, around the period [T0, T0 + 24h), and their alerts:

    | id | severity | fingerprint / source | opened | acknowledged | resolved | alerts in period |
    |---|---|---|---|---|---|---|
    | A | CRITICAL | db / cloudwatch | +1h | +1h05 (5m) | +2h (60m) | 3 |
    | B | HIGH | api / prometheus | +3h | +3h15 (15m) | active | 2 |
    | C | HIGH | disk / cloudwatch | -2h | | +1h (180m) | 1 (and one at -2h) |
    | D | LOW | cpu / custom | +5h | | active | 1 |
    | E | MEDIUM | db / cloudwatch | +6h | | active | 2 (the newest of db) |
    | F | CRITICAL | old / cloudwatch | -3d | -3d+10m | -2d | 0 |
    | G | HIGH | late / custom | +25h | | active | 0 (one at +25h) |

    plus an alert at +2h that belongs to no incident (a resolution of nothing open)."""
    rows = [
        ("A", Severity.CRITICAL, "db", "cloudwatch", _at(1), _at(1, 5), _at(2)),
        ("B", Severity.HIGH, "api", "prometheus", _at(3), _at(3, 15), None),
        ("C", Severity.HIGH, "disk", "cloudwatch", _at(-2), None, _at(1)),
        ("D", Severity.LOW, "cpu", "custom", _at(5), None, None),
        ("E", Severity.MEDIUM, "db", "cloudwatch", _at(6), None, None),
        ("F", Severity.CRITICAL, "old", "cloudwatch", _at(-72), _at(-72, 10), _at(-48)),
        ("G", Severity.HIGH, "late", "custom", _at(25), None, None),
    ]
    heads: dict[str, str] = {}
    for key, severity, fingerprint, source, opened, acked, resolved in rows:
        status = (
            IncidentStatus.RESOLVED
            if resolved
            else IncidentStatus.ACKNOWLEDGED
            if acked
            else IncidentStatus.OPEN
        )
        incident = _incident(
            f"INC-{key}",
            fingerprint=fingerprint,
            source=source,
            title=f"<!channel> {fingerprint} trouble ({key})",
            severity=severity,
            status=status,
            opened_at=opened,
            last_seen_at=opened,
            acknowledged_at=acked,
            resolved_at=resolved,
        )
        _open(store, incident, previous_head=heads.get(fingerprint))
        heads[fingerprint] = incident.id
    alerts = [
        ("A", "db", "cloudwatch", [_at(1), _at(1, 10), _at(1, 20)]),
        ("B", "api", "prometheus", [_at(3), _at(4)]),
        ("C", "disk", "cloudwatch", [_at(-2), _at(0, 30)]),
        ("D", "cpu", "custom", [_at(5)]),
        ("E", "db", "cloudwatch", [_at(6), _at(7)]),
        ("G", "late", "custom", [_at(25)]),
        (None, "db", "cloudwatch", [_at(2)]),
    ]
    for owner, problem, origin, times in alerts:
        for n, received in enumerate(times):
            alert = make_alert(problem=problem).model_copy(
                update={"fingerprint": problem, "source": origin, "received_at": received}
            )
            incident_id = f"INC-{owner}" if owner else None
            occurrence = Occurrence(key=f"{owner}-{n}", incident_id=incident_id, alert=alert)
            assert store.put_occurrence(occurrence)


def test_period_figures_match_the_hand_count(any_store):
    seed_period(any_store)

    figures = any_store.period_figures(PERIOD_SINCE, PERIOD_UNTIL, top=3, active_shown=3)

    # Opened in [T0, T0 + 24h): A, B, D, E (C and F opened before, G after).
    assert figures.opened == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 1,
        Severity.MEDIUM: 1,
        Severity.LOW: 1,
    }
    # Resolved in the period: A (CRITICAL) and C (HIGH, opened before it); F resolved before.
    assert figures.resolved == {
        Severity.CRITICAL: 1,
        Severity.HIGH: 1,
        Severity.MEDIUM: 0,
        Severity.LOW: 0,
    }
    # MTTR: (60m for A + 180m for C) / 2 = 120m.
    assert figures.resolve_seconds == pytest.approx(14_400, abs=0.01)
    assert figures.mttr == timedelta(hours=2)
    # MTTA: A after 5m, B after 15m (F was acknowledged before the period): 20m / 2 = 10m.
    assert figures.acknowledged == 2
    assert figures.ack_seconds == pytest.approx(1_200, abs=0.01)
    assert figures.mtta == timedelta(minutes=10)
    # Alerts of incidents in the period: A 3 + B 2 + C 1 + D 1 + E 2 = 9, over 5 incidents
    # (C's alert at -2h, G's at +25h and the one of no incident do not count).
    assert (figures.alerts, figures.alerted_incidents) == (9, 5)
    # db: A 3 + E 2 = 5, titled by E, whose alert is the newest; then api 2; cpu and disk 1
    # each, cpu first by name.
    assert [(f.key, f.alerts, f.title) for f in figures.top_fingerprints] == [
        ("db", 5, "<!channel> db trouble (E)"),
        ("api", 2, "<!channel> api trouble (B)"),
        ("cpu", 1, "<!channel> cpu trouble (D)"),
    ]
    # cloudwatch: A 3 + C 1 + E 2 = 6; prometheus: B 2; custom: D 1.
    assert [(s.key, s.alerts) for s in figures.top_sources] == [
        ("cloudwatch", 6),
        ("prometheus", 2),
        ("custom", 1),
    ]
    # Active now: B, D, E, G (G opened after the period, but it is open now); HIGH first, the
    # older of the two (B) before G, then MEDIUM E; LOW D is the fourth, not shown.
    assert figures.active == 4
    assert [i.id for i in figures.active_shown] == ["INC-B", "INC-G", "INC-E"]


def test_period_figures_of_an_empty_period(any_store):
    seed_period(any_store)

    figures = any_store.period_figures(T0 + timedelta(days=30), T0 + timedelta(days=31))

    assert sum(figures.opened.values()) == sum(figures.resolved.values()) == 0
    assert figures.mtta is None and figures.mttr is None
    assert (figures.alerts, figures.alerted_incidents) == (0, 0)
    assert figures.top_fingerprints == [] and figures.top_sources == []
    assert figures.active == 4, "what is open now, whatever the period"


def test_mtta_and_mttr_of_a_reopened_incident_run_from_its_reopening(
    any_store: Store, service: IncidentService, clock: ManualClock
):
    """Opened at T0, resolved by its alert at +10m, reopened at +30m (within the reopen
    window), acknowledged at +34m and resolved at +50m: the second opening took 4m to
    acknowledge and 20m to resolve, and those are the figures, not 34m and 50m."""
    incident = service.record(make_alert()).incident
    assert incident is not None
    clock.advance(minutes=10)
    service.record(make_alert(status=AlertStatus.RESOLVED))
    clock.advance(minutes=20)
    reopened = service.record(make_alert()).incident
    assert reopened is not None and reopened.reopen_count == 1
    clock.advance(minutes=4)
    service.acknowledge(incident.id, "U7")
    clock.advance(minutes=16)
    service.resolve(incident.id, "U7")

    figures = any_store.period_figures(T0, T0 + timedelta(hours=1))

    assert figures.mtta == timedelta(minutes=4)
    assert figures.mttr == timedelta(minutes=20)
    assert sum(figures.resolved.values()) == 1, "resolved twice, counted at its last resolution"


# -- chat messages, silences, tickets -----------------------------------------------------


def test_message_refs_find_the_incident_and_only_move_forward(any_store):
    any_store.put_message_ref(
        MessageRef(incident_id="INC-A", channel="C1", ts="1.1", synced_version=3)
    )
    any_store.put_message_ref(
        MessageRef(incident_id="INC-A", channel="C1", ts="1.1", synced_version=2)
    )

    ref = any_store.message_ref("INC-A")
    assert ref == MessageRef(incident_id="INC-A", channel="C1", ts="1.1", synced_version=3)
    assert any_store.incident_for_message("C1", "1.1") == "INC-A"
    assert any_store.incident_for_message("C1", "9.9") is None
    assert any_store.message_ref("INC-B") is None


def test_unsynced_incidents_are_the_unposted_active_and_the_stale(any_store):
    _open(any_store, _incident("INC-POSTED", fingerprint="a"))
    _open(any_store, _incident("INC-STALE", fingerprint="b"))
    _open(any_store, _incident("INC-NEW", fingerprint="c"))
    _open(any_store, _incident("INC-OLD", fingerprint="d", status=IncidentStatus.RESOLVED))
    any_store.put_message_ref(
        MessageRef(incident_id="INC-POSTED", channel="C", ts="1", synced_version=1)
    )
    any_store.put_message_ref(
        MessageRef(incident_id="INC-STALE", channel="C", ts="2", synced_version=1)
    )
    any_store.write(
        IncidentWrite(
            incident=_incident("INC-STALE", fingerprint="b", version=2, occurrences=2),
            expected_version=1,
        )
    )

    assert sorted(i.id for i in any_store.unsynced_incidents(T0)) == ["INC-NEW", "INC-STALE"]
    any_store.put_silence(Silence(fingerprint="c", until=T0 + timedelta(hours=1), by="U1", at=T0))
    assert [i.id for i in any_store.unsynced_incidents(T0)] == ["INC-STALE"], "silenced"
    assert len(any_store.unsynced_incidents(T0 + timedelta(hours=2))) == 2, "the silence ended"


def test_unsynced_incidents_follow_writes_and_posts_oldest_first(any_store):
    for n in range(3):
        incident = _incident(f"INC-{n}", fingerprint=f"fp{n}")
        _open(any_store, incident.model_copy(update={"opened_at": T0 + timedelta(hours=n)}))

    assert [i.id for i in any_store.unsynced_incidents(T0, limit=2)] == ["INC-0", "INC-1"]
    for n in range(3):
        any_store.put_message_ref(
            MessageRef(incident_id=f"INC-{n}", channel="C", ts=str(n), synced_version=1)
        )
    assert any_store.unsynced_incidents(T0) == []

    resolved = _incident("INC-1", fingerprint="fp1", version=2, status=IncidentStatus.RESOLVED)
    any_store.write(
        IncidentWrite(
            incident=resolved.model_copy(update={"opened_at": T0 + timedelta(hours=1)}),
            expected_version=1,
        )
    )
    assert [i.id for i in any_store.unsynced_incidents(T0)] == ["INC-1"], "the resolution"
    any_store.put_message_ref(
        MessageRef(incident_id="INC-1", channel="C", ts="1", synced_version=2)
    )
    assert any_store.unsynced_incidents(T0) == []


def test_silences_are_kept_per_fingerprint(any_store):
    until = T0 + timedelta(hours=1)
    any_store.put_silence(Silence(fingerprint="fp1", until=until, by="U1", at=T0))

    silence = any_store.silence("fp1")
    assert silence is not None and silence.until == until and silence.by == "U1"
    assert any_store.silence("fp2") is None


def test_one_ticket_claim_wins_and_a_stale_one_is_taken_over(any_store):
    lease = timedelta(minutes=5)
    first = TicketRef(incident_id="INC-A", claimed_by="U1", claimed_at=T0)
    second = TicketRef(incident_id="INC-A", claimed_by="U2", claimed_at=T0 + timedelta(seconds=1))
    late = TicketRef(incident_id="INC-A", claimed_by="U3", claimed_at=T0 + timedelta(minutes=6))

    assert any_store.claim_ticket(first, lease) is True
    assert any_store.claim_ticket(second, lease) is False
    assert any_store.claim_ticket(late, lease) is True, "the first claim's holder died"
    any_store.put_ticket(
        late.model_copy(update={"key": "OPS-1", "url": "https://jira/browse/OPS-1"})
    )
    much_later = late.model_copy(update={"claimed_at": T0 + timedelta(days=1)})
    assert any_store.claim_ticket(much_later, lease) is False, "a created ticket is never replaced"
    ticket = any_store.ticket("INC-A")
    assert ticket is not None and ticket.key == "OPS-1" and ticket.claimed_by == "U3"
    any_store.release_ticket(late)
    assert any_store.ticket("INC-A") is not None, "a created ticket is never released"


def test_a_released_claim_lets_the_next_click_try_again(any_store):
    lease = timedelta(minutes=5)
    claim = TicketRef(incident_id="INC-A", claimed_by="U1", claimed_at=T0)
    any_store.claim_ticket(claim, lease)
    other = claim.model_copy(update={"claimed_at": T0 - timedelta(seconds=1)})
    any_store.release_ticket(other)
    assert any_store.ticket("INC-A") is not None, "only the claim itself is released"
    any_store.release_ticket(claim)
    assert any_store.ticket("INC-A") is None

    retry = TicketRef(incident_id="INC-A", claimed_by="U1", claimed_at=T0 + timedelta(seconds=5))
    assert any_store.claim_ticket(retry, lease) is True


def test_a_ticket_without_a_claim_is_not_stored(any_store):
    any_store.put_ticket(TicketRef(incident_id="INC-A", claimed_by="U1", claimed_at=T0, key="X"))
    assert any_store.ticket("INC-A") is None


def test_a_lease_has_one_holder_until_it_ends_or_is_released(any_store):
    minute = timedelta(minutes=1)
    assert any_store.acquire_lease("post:INC-A", "r1", T0, minute) is LeaseGrant.ACQUIRED
    assert any_store.acquire_lease("post:INC-A", "r2", T0 + timedelta(seconds=59), minute) is (
        LeaseGrant.BUSY
    )
    assert any_store.acquire_lease("post:INC-B", "r2", T0, minute) is LeaseGrant.ACQUIRED
    renewed = any_store.acquire_lease("post:INC-A", "r1", T0 + timedelta(seconds=30), minute)
    assert renewed is LeaseGrant.ACQUIRED, "the holder renews its own lease"
    assert any_store.acquire_lease("post:INC-A", "r2", T0 + timedelta(seconds=89), minute) is (
        LeaseGrant.BUSY
    ), "the renewal moved the end on"

    any_store.release_lease("post:INC-A", "r2")
    assert any_store.acquire_lease("post:INC-A", "r3", T0 + timedelta(seconds=60), minute) is (
        LeaseGrant.BUSY
    ), "only the holder releases"
    any_store.release_lease("post:INC-A", "r1")
    assert any_store.acquire_lease("post:INC-A", "r2", T0 + timedelta(seconds=60), minute) is (
        LeaseGrant.ACQUIRED
    ), "a released lease is free, with no warning"


def test_an_expired_lease_is_taken_over_with_a_warning(any_store):
    minute = timedelta(minutes=1)
    any_store.acquire_lease("job:resync", "dead", T0, minute)

    taken = any_store.acquire_lease("job:resync", "alive", T0 + minute, minute)
    assert taken is LeaseGrant.TAKEN_OVER and taken.granted
    assert any_store.acquire_lease("job:resync", "dead", T0 + minute, minute) is LeaseGrant.BUSY
    assert not LeaseGrant.BUSY.granted


def _delivery(key: str, incident_id: str = "INC-A", at_minute: int = 0, **changes: object):
    at = T0 + timedelta(minutes=at_minute)
    base = Delivery(
        key=key, incident_id=incident_id, target="pagerduty", action="trigger",
        requested_by="U1", requested_at=at, next_attempt_at=at,
        request={"severity": "CRITICAL"},
    )  # fmt: skip
    return base.model_copy(update=changes)


def test_a_delivery_is_recorded_once_and_listed_per_incident(any_store):
    first = _delivery("INC-A:pagerduty:trigger")
    assert any_store.add_delivery(first) is True
    assert any_store.add_delivery(first.model_copy(update={"requested_by": "U2"})) is False
    any_store.add_delivery(_delivery("INC-A:email:send:1", at_minute=1, target="email"))
    any_store.add_delivery(_delivery("INC-B:teams:post", incident_id="INC-B"))

    listed = any_store.deliveries("INC-A")
    assert [d.key for d in listed] == ["INC-A:pagerduty:trigger", "INC-A:email:send:1"]
    assert listed[0].requested_by == "U1" and listed[0].request == {"severity": "CRITICAL"}
    assert any_store.deliveries("INC-C") == []
    found = any_store.delivery("INC-A:pagerduty:trigger")
    assert found is not None and found.requested_by == "U1"
    assert any_store.delivery("INC-A:teams:post") is None


def test_only_pending_deliveries_that_are_due_are_handed_out_oldest_first(any_store):
    for n, key in enumerate(["d0", "d1", "d2", "d3"]):
        any_store.add_delivery(_delivery(key, at_minute=n))
    any_store.put_delivery(
        _delivery("d1", at_minute=1, status=DeliveryStatus.SENT, attempts=1, result="OPS-1")
    )
    any_store.put_delivery(
        _delivery("d2", at_minute=2, attempts=1, last_error="HTTP 500",
                  next_attempt_at=T0 + timedelta(minutes=10))
    )  # fmt: skip
    any_store.put_delivery(_delivery("d3", at_minute=3, status=DeliveryStatus.FAILED, attempts=8))

    due = any_store.due_deliveries(T0 + timedelta(minutes=5))
    assert [d.key for d in due] == ["d0"]
    later = any_store.due_deliveries(T0 + timedelta(minutes=10))
    assert [d.key for d in later] == ["d0", "d2"]
    assert later[1].last_error == "HTTP 500" and later[1].attempts == 1
    assert [d.key for d in any_store.due_deliveries(T0 + timedelta(hours=1), limit=1)] == ["d0"]
    sent = [d for d in any_store.deliveries("INC-A") if d.key == "d1"]
    assert sent[0].status is DeliveryStatus.SENT and sent[0].result == "OPS-1"


def test_ping_answers(any_store):
    any_store.ping()


def test_check_names_the_store_and_its_expiry(any_store):
    said = any_store.check()
    assert "SQLite at" in said or ("DynamoDB table" in said and "TTL on expires_at" in said)


def test_check_refuses_a_table_that_is_not_the_bots(aws):  # noqa: F811
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="other-store",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
    )  # fmt: skip
    store = DynamoStore(table_prefix="other")
    with pytest.raises(StoreError, match="lacks the index"):
        store.check()
    bare = DynamoStore(table_prefix=f"bare-{uuid.uuid4().hex[:6]}")
    bare.create_tables()
    bare._client.update_time_to_live(
        TableName=bare.table,
        TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"},
    )
    assert "TTL off" in bare.check()
    store.close()
    bare.close()


# -- the lifecycle through IncidentService ------------------------------------------------


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


# -- DynamoDB only ------------------------------------------------------------------------


def test_create_tables_is_idempotent_and_enables_ttl(aws):  # noqa: F811
    store = DynamoStore(table_prefix=f"test-{uuid.uuid4().hex[:8]}")
    store.create_tables()
    store.create_tables()

    ttl = store._client.describe_time_to_live(TableName=store.table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    table = store._client.describe_table(TableName=store.table)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert store.table.endswith("-store")
    store.close()


def test_dynamo_items_carry_an_expiry_from_their_own_time(aws):  # noqa: F811
    store = DynamoStore(table_prefix=f"test-{uuid.uuid4().hex[:8]}", retention=timedelta(days=7))
    store.create_tables()
    store.put_occurrence(Occurrence(key="k", incident_id=None, alert=make_alert()))

    item = store._client.get_item(
        TableName=store.table, Key={"pk": {"S": "OCC#k"}, "sk": {"S": "OCCURRENCE"}}
    )["Item"]
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=7)).timestamp())
    store.close()


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


def test_of_replicas_racing_for_a_lease_exactly_one_wins(serialized_aws):  # noqa: F811
    prefix = f"lease-{uuid.uuid4().hex[:8]}"
    stores = [DynamoStore(table_prefix=prefix) for _ in range(4)]
    stores[0].create_tables()
    barrier = threading.Barrier(len(stores))
    grants: list[LeaseGrant] = []

    def race(index: int) -> None:
        barrier.wait()
        for round_ in range(10):
            grant = stores[index].acquire_lease(
                f"post:INC-{round_}", f"r{index}", T0, timedelta(minutes=1)
            )
            grants.append(grant)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert grants.count(LeaseGrant.ACQUIRED) == 10
    assert grants.count(LeaseGrant.BUSY) == 30
    for opened in stores:
        opened.close()


def test_alerts_by_severity_answer_the_briefs_query(
    any_store: Store, service: IncidentService, clock: ManualClock
):
    def received_now(**kwargs: object) -> Alert:
        return make_alert(**kwargs).model_copy(update={"received_at": clock.now})  # type: ignore[arg-type]

    service.record(received_now(title="db down", severity=Severity.CRITICAL, dedup_key="c1"))
    clock.advance(hours=2)
    service.record(received_now(title="disk", severity=Severity.LOW, dedup_key="l1"))
    service.record(received_now(title="db down", severity=Severity.CRITICAL, dedup_key="c2"))
    clock.advance(hours=1)
    service.record(
        received_now(
            title="cpu", severity=Severity.CRITICAL, status=AlertStatus.RESOLVED, dedup_key="c3"
        )
    )

    found = any_store.alerts_by_severity(Severity.CRITICAL, since=T0 + timedelta(hours=1))

    assert [o.key for o in found] == ["c3", "c2"], "newest first, since the cut-off"
    assert found[0].incident_id is None, "a resolution of nothing open is kept too"
    assert found[1].alert.title == "db down"
    assert [o.key for o in any_store.alerts_by_severity(Severity.CRITICAL, T0, limit=1)] == ["c3"]


# -- batches: what a group commit hands the lifecycle -------------------------------------


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
