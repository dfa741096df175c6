"""moto's server mode on 127.0.0.1, for integration tests that talk to AWS over a real socket.

`running_moto_server()` starts `ThreadedMotoServer` on a free port (the OS picks it, so
parallel runs never collide) and stops it; `moto_server` is the module-scoped fixture around it,
and `aws` the per-test fixture that wipes moto's state and points boto3 at the server through
the environment (`AWS_ENDPOINT_URL`, fake credentials, a region) the way production is pointed
at AWS. Import both fixtures into a test module:

    from tests.fakes.moto_server import aws, moto_server  # noqa: F401

Know moto's gaps (DESIGN.md, "Testing contract") before trusting a green test: no
CloudWatch `DescribeAlarmHistory` and no CloudTrail `LookupEvents` (both answer HTTP 500;
tests/fakes/moto_gaps.py adds them to moto, fed from seeded data, for the tests that use its
`moto_gaps` fixture), no Logs `StopQuery`, and a Logs Insights query complete within
StartQuery (moto_gaps adds the one and can hold queries running), metric math returns no
datapoints, Logs filter patterns are plain terms and quoted phrases only, Logs Insights knows
only `fields`, `sort` and `limit` (no `filter`, no `stats`, and `@timestamp` comes back in
epoch milliseconds), ECS services never get events nor a second deployment, and DynamoDB does
not isolate concurrent requests.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sqs.models import SQSBackend
from werkzeug.serving import make_server

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@contextmanager
def running_moto_server() -> Iterator[str]:
    """A moto server for the duration of the block; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def running_serialized_moto_server() -> Iterator[str]:
    """A moto server that serves one DynamoDB request at a time: DynamoDB applies each request
    atomically, moto does not (DESIGN.md), so a test of racing replicas needs this. Other
    services go straight through, so an SQS long poll never holds DynamoDB up. It shares
    moto's in-process state with every other moto server of the process.

    While it runs, moto is `lightened_moto()`, because a storm of 1,000 alerts would
    otherwise take minutes."""
    app = moto_app()
    lock = threading.Lock()

    def one_at_a_time(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
            return list(app(environ, start_response))
        with lock:
            return list(app(environ, start_response))

    with lightened_moto(), serving(one_at_a_time) as endpoint:
        yield endpoint


@contextmanager
def lightened_moto() -> Iterator[None]:
    """moto without three costs that grow with the data it holds and that AWS does not have,
    and without a log line per request; all restored on leaving. With DynamoDB requests served
    one at a time (as `running_serialized_moto_server` does), nothing observable changes:

    - TransactWriteItems deep-copies the whole table once per item of the transaction, to
      roll back (40 ms at 1,000 items, 160 ms at 4,000): `_transact_without_backup`.
    - SQS computes every attribute of a queue, message counts included, for each message it
      hands out, only to read the retention period: `_within_retention`.
    - SQS reads the clock through datetime arithmetic (7 us) for every message in the queue
      on each send, receive and attribute read; `time.time()` gives the same value.
    """
    original = DynamoDBBackend.transact_write_items
    retained = SQSBackend.is_message_valid_based_on_retention_period
    sqs_models: Any = importlib.import_module("moto.sqs.models")
    clocks = sqs_models.unix_time, sqs_models.unix_time_millis
    werkzeug_log = logging.getLogger("werkzeug")
    log_level = werkzeug_log.level

    def unix_time(moment: Any = None) -> float:
        return time.time() if moment is None else float(clocks[0](moment))

    def unix_time_millis(moment: Any = None) -> float:
        return unix_time(moment) * 1000.0

    DynamoDBBackend.transact_write_items = _transact_without_backup(original)  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign,assignment]
    sqs_models.unix_time, sqs_models.unix_time_millis = unix_time, unix_time_millis
    werkzeug_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
        sqs_models.unix_time, sqs_models.unix_time_millis = clocks
        werkzeug_log.setLevel(log_level)


def moto_app() -> Any:
    """moto's WSGI application, every service on one endpoint, as its server mode runs it."""
    return DomainDispatcherApplication(create_backend_app)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """A WSGI application (moto's, or one wrapping it) on 127.0.0.1 on a free port, one thread
    per request, with moto's request handler; yields its endpoint URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _within_retention(backend: SQSBackend, queue_name: str, message: Any) -> bool:
    period = int(backend.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return bool(period + message.sent_timestamp / 1000 > time.time())


def _transact_without_backup(original: Any) -> Any:
    """DynamoDB's all-or-nothing, the cheap way: check every condition against the state
    before the transaction, and when all hold, apply the writes in order with nothing to roll
    back. Anything else (a failed condition, two actions on one item) takes moto's own path,
    so a cancellation carries moto's reasons exactly."""

    def transact(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        actions = [next(iter(item.items())) for item in transact_items]
        keys: set[str] = set()
        for _kind, action in actions:
            table = backend.get_table(action["TableName"])
            key = action.get("Key") or {
                name: action["Item"][name]
                for name in (table.hash_key_attr, table.range_key_attr)
                if name is not None
            }
            keys.add(f"{action['TableName']}|{sorted(key.items())}")
            condition = action.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                condition,
                action.get("ExpressionAttributeNames"),
                action.get("ExpressionAttributeValues"),
            ).expr(backend.get_item(action["TableName"], key)):
                return original(backend, transact_items)  # type: ignore[no-any-return]
        if len(keys) < len(actions) or len(actions) > 100:
            return original(backend, transact_items)  # type: ignore[no-any-return]
        for kind, action in actions:
            names = action.get("ExpressionAttributeNames")
            values = action.get("ExpressionAttributeValues")
            if kind == "Put":
                backend.put_item(action["TableName"], action["Item"],
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)  # fmt: skip
            elif kind == "Update":
                backend.update_item(action["TableName"], action["Key"],
                                    update_expression=action["UpdateExpression"],
                                    expression_attribute_names=names,
                                    expression_attribute_values=values)  # fmt: skip
            elif kind == "Delete":
                backend.delete_item(action["TableName"], action["Key"])
        return None

    return transact


RESET_TIMEOUT = 60.0
"""Seconds a reset may take: after a benchmark's storm moto frees its whole state, which took
5.2 s after bench/sqs.py's three-process run."""


def reset(endpoint: str) -> None:
    """Forget every resource: moto keeps its state in the process, across tests."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=RESET_TIMEOUT) as response:
        response.read()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """One server per test module: starting one costs about a second."""
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A clean moto and an environment that sends every boto3 client to it, with fake
    credentials; the developer's own AWS config and profiles are hidden, so nothing can reach
    a real account. Returns the endpoint URL."""
    reset(moto_server)
    _point_boto3_at(moto_server, monkeypatch, tmp_path)
    return moto_server


@pytest.fixture
def serialized_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Like `aws`, on a server of its own that serves one request at a time (for races).
    State is not wiped: give each test its own resource names."""
    with running_serialized_moto_server() as endpoint:
        _point_boto3_at(endpoint, monkeypatch, tmp_path)
        yield endpoint


def _point_boto3_at(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in boto3_env(endpoint, tmp_path / "no-aws-config").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def boto3_env(endpoint: str, missing: Path) -> dict[str, str]:
    """The variables that send every boto3 client to `endpoint` with fake credentials, with
    `missing` (a path that does not exist) standing for the developer's AWS config files."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(missing),
        "AWS_SHARED_CREDENTIALS_FILE": str(missing),
    }
