"""OutboxStore on both backends: a delivery recorded once, and only the pending ones that
are due handed out."""

from __future__ import annotations

from datetime import timedelta

from incidents.models import Delivery, DeliveryStatus
from tests.conftest import T0
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import (
    any_store,  # noqa: F401
)


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
