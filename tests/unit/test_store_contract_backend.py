"""A whole backend (`Store`): what `incident-bot doctor` says of it, and DynamoDB's table
created idempotently by `init-store`."""

from __future__ import annotations

import uuid

import boto3
import pytest

from incidents.dynamodb import DynamoStore
from incidents.store import StoreError
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import (
    any_store,  # noqa: F401
)


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
