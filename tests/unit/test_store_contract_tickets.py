"""TicketStore on both backends: one claim wins; a stale or released one lets the next click
try again."""

from __future__ import annotations

from datetime import timedelta

from incidents.models import TicketRef
from tests.conftest import T0
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import any_store  # noqa: F401


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
