"""moto's server mode on 127.0.0.1, for integration tests that talk to AWS over a real socket.

`running_moto_server()` starts `ThreadedMotoServer` on a free port (the OS picks it, so
parallel runs never collide) and stops it; `moto_server` is the module-scoped fixture around it,
and `aws` the per-test fixture that wipes moto's state and points boto3 at the server through
the environment (`AWS_ENDPOINT_URL`, fake credentials, a region) the way production is pointed
at AWS. Import both fixtures into a test module:

    from tests.fakes.moto_server import aws, moto_server  # noqa: F401

Know moto's gaps (DESIGN.md, "Testing contract") before trusting a green test: no
`DescribeAlarmHistory` (it answers HTTP 500), metric math returns no datapoints, Logs filter
patterns are plain terms and quoted phrases only, and DynamoDB does not isolate concurrent
requests.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
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
    """A moto server that serves one request at a time: DynamoDB applies each request
    atomically, moto does not (DESIGN.md), so a test of racing replicas needs this. It shares
    moto's in-process state with every other moto server of the process."""
    app = moto_app()
    lock = threading.Lock()

    def one_at_a_time(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            return list(app(environ, start_response))

    with serving(one_at_a_time) as endpoint:
        yield endpoint


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


def reset(endpoint: str) -> None:
    """Forget every resource: moto keeps its state in the process, across tests."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
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
