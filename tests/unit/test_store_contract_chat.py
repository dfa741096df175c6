"""ChatRefStore on both backends: message refs, and the incidents a resync must post or
update."""

from __future__ import annotations

from datetime import timedelta

from incidents.models import IncidentStatus, MessageRef, Silence
from incidents.store import IncidentWrite
from tests.conftest import T0
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import (
    any_store,  # noqa: F401
    make_incident,
    open_incident,
)


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
    open_incident(any_store, make_incident("INC-POSTED", fingerprint="a"))
    open_incident(any_store, make_incident("INC-STALE", fingerprint="b"))
    open_incident(any_store, make_incident("INC-NEW", fingerprint="c"))
    open_incident(
        any_store, make_incident("INC-OLD", fingerprint="d", status=IncidentStatus.RESOLVED)
    )
    any_store.put_message_ref(
        MessageRef(incident_id="INC-POSTED", channel="C", ts="1", synced_version=1)
    )
    any_store.put_message_ref(
        MessageRef(incident_id="INC-STALE", channel="C", ts="2", synced_version=1)
    )
    any_store.write(
        IncidentWrite(
            incident=make_incident("INC-STALE", fingerprint="b", version=2, occurrences=2),
            expected_version=1,
        )
    )

    assert sorted(i.id for i in any_store.unsynced_incidents(T0)) == ["INC-NEW", "INC-STALE"]
    any_store.put_silence(Silence(fingerprint="c", until=T0 + timedelta(hours=1), by="U1", at=T0))
    assert [i.id for i in any_store.unsynced_incidents(T0)] == ["INC-STALE"], "silenced"
    assert len(any_store.unsynced_incidents(T0 + timedelta(hours=2))) == 2, "the silence ended"


def test_unsynced_incidents_follow_writes_and_posts_oldest_first(any_store):
    for n in range(3):
        incident = make_incident(f"INC-{n}", fingerprint=f"fp{n}")
        open_incident(any_store, incident.model_copy(update={"opened_at": T0 + timedelta(hours=n)}))

    assert [i.id for i in any_store.unsynced_incidents(T0, limit=2)] == ["INC-0", "INC-1"]
    for n in range(3):
        any_store.put_message_ref(
            MessageRef(incident_id=f"INC-{n}", channel="C", ts=str(n), synced_version=1)
        )
    assert any_store.unsynced_incidents(T0) == []

    resolved = make_incident("INC-1", fingerprint="fp1", version=2, status=IncidentStatus.RESOLVED)
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
