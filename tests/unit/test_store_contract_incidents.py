"""IncidentStore on both backends: conditional writes, the lists of incidents and their
alerts, timelines and silences. Every test with `any_store` runs on SQLite and on DynamoDB
(moto's server); DynamoDB-only details (item expiry) are marked by their fixture."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from incidents.dynamodb import DynamoStore
from incidents.lifecycle import IncidentService
from incidents.models import (
    Alert,
    AlertStatus,
    IncidentStatus,
    Occurrence,
    Severity,
    Silence,
    TimelineKind,
)
from incidents.store import ConflictError, DuplicateOccurrenceError, IncidentWrite, Store
from tests.conftest import T0, ManualClock, make_alert
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import (  # noqa: F401
    any_store,
    make_event,
    make_incident,
    open_incident,
    service,
)


def test_a_stale_version_is_refused(any_store):
    open_incident(any_store, make_incident())
    any_store.write(
        IncidentWrite(incident=make_incident(version=2, occurrences=2), expected_version=1)
    )

    with pytest.raises(ConflictError):
        any_store.write(
            IncidentWrite(incident=make_incident(version=2, occurrences=9), expected_version=1)
        )
    assert any_store.get_incident("INC-A").occurrences == 2


def test_an_update_of_a_missing_incident_and_a_second_creation_conflict(any_store):
    with pytest.raises(ConflictError):
        any_store.write(IncidentWrite(incident=make_incident(version=2), expected_version=1))
    assert any_store.get_incident("INC-A") is None

    any_store.write(IncidentWrite(incident=make_incident(), expected_version=None))
    with pytest.raises(ConflictError):
        any_store.write(IncidentWrite(incident=make_incident(), expected_version=None))


def test_a_second_opening_for_the_same_fingerprint_loses_the_head_race(any_store):
    open_incident(any_store, make_incident("INC-A"))

    with pytest.raises(ConflictError):
        open_incident(any_store, make_incident("INC-B"), previous_head=None)
    assert any_store.get_incident("INC-B") is None
    with pytest.raises(ConflictError):
        open_incident(any_store, make_incident("INC-B"), previous_head="INC-OTHER")
    open_incident(any_store, make_incident("INC-B"), previous_head="INC-A")
    assert any_store.head_incident("fp1").id == "INC-B"
    assert any_store.head_incident("fp-none") is None


def test_a_duplicate_occurrence_undoes_the_whole_write(any_store):
    open_incident(any_store, make_incident())
    occurrence = Occurrence(key="k", incident_id="INC-A", alert=make_alert())
    any_store.write(
        IncidentWrite(
            incident=make_incident(version=2), expected_version=1, occurrences=(occurrence,)
        )
    )

    with pytest.raises(DuplicateOccurrenceError):
        any_store.write(
            IncidentWrite(
                incident=make_incident(version=3, occurrences=5),
                expected_version=2,
                occurrences=(occurrence,),
                events=(make_event("INC-A", TimelineKind.ACKNOWLEDGED),),
            )
        )
    assert any_store.get_incident("INC-A").version == 2
    assert any_store.timeline("INC-A") == []


def test_put_occurrence_counts_a_key_once(any_store):
    occurrence = Occurrence(key="k1", incident_id=None, alert=make_alert())

    assert any_store.put_occurrence(occurrence) is True
    assert any_store.put_occurrence(occurrence) is False
    assert any_store.has_occurrence("k1")
    assert not any_store.has_occurrence("k2")


def test_list_incidents_filters_by_status_and_time_newest_first(any_store):
    for n in range(4):
        status = IncidentStatus.RESOLVED if n % 2 else IncidentStatus.OPEN
        incident = make_incident(f"INC-{n}", fingerprint=f"fp{n}", status=status)
        open_incident(any_store, incident.model_copy(update={"opened_at": T0 + timedelta(hours=n)}))

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
    open_incident(any_store, make_incident())
    any_store.write(
        IncidentWrite(
            incident=make_incident(version=2, status=IncidentStatus.RESOLVED), expected_version=1
        )
    )

    assert any_store.list_incidents(statuses=[IncidentStatus.OPEN]) == []
    assert [i.id for i in any_store.list_incidents(statuses=[IncidentStatus.RESOLVED])] == ["INC-A"]


def test_occurrences_are_newest_first_and_limited(any_store):
    open_incident(any_store, make_incident())
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
    opened = make_event("INC-A", TimelineKind.OPENED)
    any_store.write(
        IncidentWrite(incident=make_incident(), expected_version=None, events=(opened,))
    )
    later = (make_event("INC-A", TimelineKind.REOPENED), make_event("INC-A", TimelineKind.FLAPPING))
    any_store.write(
        IncidentWrite(incident=make_incident(version=2), expected_version=1, events=later)
    )

    kinds = [e.kind for e in any_store.timeline("INC-A")]
    assert kinds == [TimelineKind.OPENED, TimelineKind.REOPENED, TimelineKind.FLAPPING]
    assert any_store.timeline("INC-B") == []


def test_silences_are_kept_per_fingerprint(any_store):
    until = T0 + timedelta(hours=1)
    any_store.put_silence(Silence(fingerprint="fp1", until=until, by="U1", at=T0))

    silence = any_store.silence("fp1")
    assert silence is not None and silence.until == until and silence.by == "U1"
    assert any_store.silence("fp2") is None


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


def test_dynamo_items_carry_an_expiry_from_their_own_time(aws):  # noqa: F811
    store = DynamoStore(table_prefix=f"test-{uuid.uuid4().hex[:8]}", retention=timedelta(days=7))
    store.create_tables()
    store.put_occurrence(Occurrence(key="k", incident_id=None, alert=make_alert()))

    item = store._client.get_item(
        TableName=store.table, Key={"pk": {"S": "OCC#k"}, "sk": {"S": "OCCURRENCE"}}
    )["Item"]
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=7)).timestamp())
    store.close()
