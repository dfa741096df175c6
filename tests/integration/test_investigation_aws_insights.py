"""What guards the Logs Insights tool, against moto's server over a real socket with real boto3
clients: a query that would choose its own log groups (`SOURCE`) is refused before any call,
the query goes out in Logs Insights' own language, a query the loop's tool timeout gives up on
is stopped rather than left running, and no tool builds its boto3 client on the event loop.

moto runs a query to completion inside StartQuery and has no StopQuery:
tests/fakes/moto_gaps.py adds StopQuery and can hold queries `Running`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import boto3
import pytest
from moto.logs.models import logs_backends

from analysis.aws_clients import BotoClients
from analysis.investigation.aws_logs import STOP_WAIT, _stop
from analysis.investigation.aws_tools import AwsToolLimits, AwsTools
from analysis.investigation.loop import InvestigationLimits
from incidents.lifecycle import IncidentService
from incidents.sqlite import SqliteStore
from tests.alarms import put_cpu
from tests.conftest import ManualClock
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.moto_gaps import filled_moto_gaps, hold_insights_queries
from tests.fakes.moto_server import ACCOUNT, REGION, aws, moto_server  # noqa: F401
from tests.integration.test_engine import GOOD_ANALYSIS
from tests.integration.test_investigation import results_in
from tests.integration.test_investigation_aws import (
    GROUP,
    Loop,
    call,
    conclude,
    logs_alert,
    put_lines,
    run,
    tools,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]


def queries() -> list[Any]:
    """moto's Logs Insights queries, oldest first."""
    return list(logs_backends[ACCOUNT][REGION].queries.values())


@pytest.mark.parametrize(
    "query",
    [
        "SOURCE logGroups(namePrefix: ['/team-b']) | fields @message",
        "  source logGroups()",
        "fields @message | Source logGroups(namePrefix: ['/'])",
        "fields @message\n|SOURCE logGroups()",
        "# every group\nsource logGroups()",
    ],
)
async def test_a_query_choosing_its_own_log_groups_is_refused_before_any_call(
    store: SqliteStore, clock: ManualClock, query: str
):
    put_lines(GROUP, {-1: "ERROR checkout failed"})
    registry = tools(logs_alert(), store, clock)

    with pytest.raises(ValueError, match="may not choose its log groups with a SOURCE command"):
        await run(registry, "logs_insights_query", query=query)

    assert queries() == []


async def test_a_field_named_source_is_no_source_command(
    store: SqliteStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
):
    put_lines(GROUP, {-1: "ERROR checkout failed"})
    registry = tools(logs_alert(), store, clock)

    with filled_moto_gaps(), caplog.at_level(logging.INFO, "analysis.investigation.aws_logs"):
        found = await run(registry, "logs_insights_query", query="fields @message, source")

    assert [row["@message"] for row in found["rows"]] == ["ERROR checkout failed"]
    [query] = queries()
    assert (query.query_language, query.status) == ("CWLI", "Complete")
    assert "not stopped" not in caplog.text, "a query that completed needs no StopQuery"


async def test_a_query_the_loop_gives_up_on_is_stopped(store: SqliteStore, clock: ManualClock):
    put_lines(GROUP, {-1: "ERROR checkout failed"})
    with filled_moto_gaps():
        hold_insights_queries()
        async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
            loop = Loop(fake, store, clock, InvestigationLimits(tool_timeout=0.5))
            fake.enqueue(call("logs_insights_query", query="fields @message"), conclude())
            alert = logs_alert()
            incident = loop.record(alert)
            try:
                started = asyncio.get_running_loop().time()
                analysis = await loop.engine.analyze(incident, alert)
                took = asyncio.get_running_loop().time() - started
            finally:
                await loop.engine.close()

    [answer] = results_in(fake.requests[1])
    assert answer["is_error"] is True
    assert answer["content"] == "logs_insights_query timed out after 0.5s."
    [query] = queries()
    assert query.status == "Cancelled"
    assert took < 0.5 + STOP_WAIT + 2, "the stop is waited for a short while only"
    assert analysis.investigation is not None
    assert [c.is_error for c in analysis.investigation.calls] == [True]


async def test_stopping_never_raises(caplog: pytest.LogCaptureFixture):
    client = boto3.client("logs")
    with filled_moto_gaps(), caplog.at_level(logging.INFO, "analysis.investigation.aws_logs"):
        await _stop(client, "no-such-query")
    assert "Logs Insights query no-such-query not stopped" in caplog.text
    assert "ResourceNotFoundException" in caplog.text


class ThreadNoting(BotoClients):
    """Real boto3 clients, noting which thread asked for each."""

    def __init__(self) -> None:
        super().__init__(region=REGION)
        self.threads: list[int] = []

    def __call__(self, service: str, region: str | None) -> Any:
        self.threads.append(threading.get_ident())
        return super().__call__(service, region)


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("logs_insights_query", {"query": "fields @message"}),
        ("log_events", {}),
        ("metric_data", {"namespace": "AWS/EC2", "metric_name": "CPUUtilization"}),
        ("describe_alarms", {"state": "ALARM"}),
    ],
)
async def test_no_tool_makes_its_client_on_the_event_loop(
    store: SqliteStore, clock: ManualClock, name: str, arguments: dict[str, Any]
):
    """Creating a client takes a lock and tens of milliseconds: not on the loop's thread."""
    put_lines(GROUP, {-1: "ERROR checkout failed"})
    put_cpu()
    clients = ThreadNoting()
    alert = logs_alert()
    incident = IncidentService(store, clock=clock).record(alert).incident
    assert incident is not None
    registry = AwsTools(clients, AwsToolLimits()).tools_for(incident, alert)

    await run(registry, name, **arguments)

    assert clients.threads and threading.get_ident() not in clients.threads
