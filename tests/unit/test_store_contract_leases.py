"""LeaseStore on both backends: one holder at a time, an expired lease taken over with a
warning; on DynamoDB, of replicas racing for a lease exactly one wins."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from incidents.dynamodb import DynamoStore
from incidents.store import LeaseGrant
from tests.conftest import T0
from tests.fakes.moto_server import aws, moto_server, serialized_aws  # noqa: F401
from tests.unit.store_contract import any_store  # noqa: F401


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
