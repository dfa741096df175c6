"""The investigation's built-in AWS tools against moto's server over a real socket, with real
boto3 clients: through the real loop with the local Messages API (a secret in a log line never
reaches it; refusals, argument and AWS errors come back as error results), then each logs and
metrics tool on seeded state, the allow-list, the window cap, argument checks, and the wiring
in `build_engine`. tests/integration/test_investigation_aws_changes.py has the "what changed"
tools, which need moto's gaps filled; tests/integration/test_investigation_aws_insights.py
what guards a Logs Insights query (SOURCE refused, a query given up on stopped).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from anthropic import AsyncAnthropic

from analysis import prompting
from analysis.aws_clients import BotoClients
from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.investigation.aws_tools import AwsToolLimits, AwsTools
from analysis.investigation.loop import InvestigationLimits, Investigator
from analysis.investigation.past_incidents import StoreTools
from analysis.investigation.registry import CombinedTools, ToolRegistry
from bot.components import build_engine
from bot.settings import load_settings
from incidents.lifecycle import IncidentService
from incidents.models import Alert, Incident
from incidents.sqlite import SqliteStore
from tests.alarms import ALARM, CHANGE, DIMS, classic_alarm, fixture, parse_one, put_cpu
from tests.conftest import ManualClock
from tests.fakes.anthropic_server import FakeAnthropic, ToolUse
from tests.fakes.moto_server import REGION, aws, moto_server  # noqa: F401
from tests.integration.test_engine import GOOD_ANALYSIS
from tests.integration.test_investigation import results_in

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws")]

LOGS = "cloudwatch-logs-subscription/DERIVED_decoded_powertools-py_cloudWatchLogEvent.json"
GROUP = "/aws/lambda/checkout"
STREAM = "2026/11/24/[$LATEST]0123abcd"
SECRET_PASSWORD = "hunter2-Sup3rSecret"
SECRET_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_LINE = f"ERROR login failed: password={SECRET_PASSWORD} with key {SECRET_KEY}"
AWS_TOOLS = {
    "logs_insights_query",
    "log_events",
    "metric_data",
    "describe_alarms",
    "alarm_history",
    "recent_changes",
    "deployments",
}


# --- helpers ---------------------------------------------------------------------------------


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def logs_alert(at: datetime = CHANGE) -> Alert:
    doc = fixture(LOGS)
    doc.update(logGroup=GROUP, logStream=STREAM)
    doc["logEvents"] = [{"id": "sub-1", "timestamp": ms(at), "message": "ERROR checkout failed"}]
    return parse_one(doc)


def put_lines(group: str, minutes: dict[int, str], stream: str = STREAM) -> None:
    """One line at each offset in minutes from CHANGE."""
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[
            {"timestamp": ms(CHANGE + timedelta(minutes=m)), "message": text}
            for m, text in sorted(minutes.items())
        ],
    )


def tools(alert: Alert, store: SqliteStore, clock: ManualClock, **limits: Any) -> ToolRegistry:
    incident = IncidentService(store, clock=clock).record(alert).incident
    assert incident is not None
    return AwsTools(BotoClients(region=REGION), AwsToolLimits(**limits)).tools_for(incident, alert)


async def run(registry: ToolRegistry, name: str, **arguments: Any) -> Any:
    tool = registry.get(name)
    assert tool is not None, [t.name for t in registry]
    return await tool.run(arguments)


@pytest.fixture
def alarm_tools(store: SqliteStore, clock: ManualClock) -> ToolRegistry:
    return tools(classic_alarm(), store, clock)


@pytest.fixture
def log_tools(store: SqliteStore, clock: ManualClock) -> ToolRegistry:
    return tools(logs_alert(), store, clock, log_groups=("/app/*", "/exact/group"))


# --- through the loop ------------------------------------------------------------------------


class Loop:
    """The engine with the real Investigator, our store's and AWS's tools, and the local
    Messages API scripted to call them."""

    def __init__(
        self,
        fake: FakeAnthropic,
        store: SqliteStore,
        clock: ManualClock,
        limits: InvestigationLimits | None = None,
    ) -> None:
        self.fake = fake
        self.service = IncidentService(store, clock=clock)
        client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0)
        source = CombinedTools(
            StoreTools(store),
            AwsTools(BotoClients(region=REGION), AwsToolLimits(log_groups=("/app/*",))),
        )
        self.engine = AnalysisEngine(
            store,
            EngineConfig(),
            claude=ClaudeAnalyzer(client),
            clock=clock,
            investigator=Investigator(client, limits or InvestigationLimits()),
            tools=source,
        )

    def record(self, alert: Alert) -> Incident:
        incident = self.service.record(alert).incident
        assert incident is not None
        return incident


@pytest.fixture
async def loop(store: SqliteStore, clock: ManualClock) -> AsyncIterator[Loop]:
    async with FakeAnthropic(default_tool_input=GOOD_ANALYSIS) as fake:
        made = Loop(fake, store, clock)
        yield made
        await made.engine.close()


def call(name: str, **arguments: Any) -> ToolUse:
    return ToolUse(arguments, name=name)


def conclude() -> ToolUse:
    return ToolUse(GOOD_ANALYSIS, name=prompting.TOOL_NAME)


async def test_logs_with_a_secret_come_back_redacted_through_the_loop(loop: Loop):
    put_lines(GROUP, {-20: "INFO warming up", -3: SECRET_LINE, 2: "INFO retrying"})
    loop.fake.enqueue(
        call("log_events", filter_pattern="ERROR"),
        call("logs_insights_query", query="fields @timestamp, @message | sort @timestamp asc"),
        conclude(),
    )
    alert = logs_alert()
    incident = loop.record(alert)

    analysis = await loop.engine.analyze(incident, alert)

    offered = loop.fake.requests[0].body
    assert offered is not None
    assert AWS_TOOLS | {"past_incidents"} <= {tool["name"] for tool in offered["tools"]}
    for request in loop.fake.requests:
        raw = request.raw.decode()
        assert SECRET_PASSWORD not in raw and SECRET_KEY not in raw
    [events] = results_in(loop.fake.requests[1])
    assert events["is_error"] is False
    found = json.loads(events["content"])
    [line] = found["events"]
    assert (
        line["message"].startswith("ERROR login failed: password=")
        and "[REDACTED" in line["message"]
    )
    [insights] = results_in(loop.fake.requests[2])
    rows = json.loads(insights["content"])["rows"]
    assert [row["@message"].split(":")[0] for row in rows] == [
        "INFO warming up",
        "ERROR login failed",
        "INFO retrying",
    ]
    trace = analysis.investigation
    assert trace is not None
    assert [c.tool for c in trace.calls] == ["log_events", "logs_insights_query"]
    assert SECRET_PASSWORD not in analysis.model_dump_json()


async def test_refusals_argument_errors_and_aws_errors_are_error_results(loop: Loop):
    put_lines(GROUP, {-1: "ERROR checkout failed"})
    loop.fake.enqueue(
        call("log_events", log_group="/team-b/payments"),
        call("logs_insights_query", query="fields @message", log_groups=["/app/missing"]),
        call("metric_data", namespace="AWS/Lambda", metric_name="Errors", period_seconds=90),
        call("log_events", minutes_before=600),
        call("log_events"),
        conclude(),
    )
    alert = logs_alert()
    incident = loop.record(alert)

    analysis = await loop.engine.analyze(incident, alert)

    answers = [results_in(request)[0] for request in loop.fake.requests[1:6]]
    refused, missing, bad_period, too_wide, fine = answers
    assert refused["is_error"] is True
    assert refused["content"] == (
        "log_events failed: ValueError: log group '/team-b/payments' is not readable here; the "
        f"readable ones are: {GROUP}, /app/* (INVESTIGATION_LOG_GROUPS widens this)"
    )
    assert missing["is_error"] is True
    assert missing["content"].startswith(
        "logs_insights_query failed: AwsError: ResourceNotFoundException"
    )
    assert bad_period["is_error"] is True
    assert "period_seconds must be a multiple of 60" in bad_period["content"]
    assert too_wide["is_error"] is True
    assert "wider than the cap of 360 minutes (INVESTIGATION_MAX_WINDOW)" in too_wide["content"]
    assert fine["is_error"] is False and "ERROR checkout failed" in fine["content"]
    assert analysis.investigation is not None
    assert [c.is_error for c in analysis.investigation.calls] == [True, True, True, True, False]


# --- logs ------------------------------------------------------------------------------------


async def test_insights_reads_the_window_around_the_alert(log_tools: ToolRegistry):
    put_lines(GROUP, {m: f"line {m}" for m in (-90, -45, -5, 0, 5, 30)})
    query = "fields @timestamp, @message | sort @timestamp asc"

    found = await run(log_tools, "logs_insights_query", query=query)

    assert found["log_groups"] == [GROUP] and found["status"] == "Complete"
    assert found["from"] == f"{CHANGE - timedelta(minutes=60):%Y-%m-%dT%H:%M:%S}Z"
    assert found["to"] == f"{CHANGE + timedelta(minutes=10):%Y-%m-%dT%H:%M:%S}Z"
    assert [row["@message"] for row in found["rows"]] == ["line -45", "line -5", "line 0", "line 5"]
    assert all("@ptr" not in row for row in found["rows"])
    assert found["records_matched"] == 4

    wider = await run(log_tools, "logs_insights_query", query=query, minutes_before=120, limit=2)
    assert [row["@message"] for row in wider["rows"]] == ["line -90", "line -45"]


async def test_log_events_filter_limit_and_the_allow_list(log_tools: ToolRegistry):
    put_lines(GROUP, {-50: "ERROR a", -40: "INFO b", -4: "ERROR c", -2: "ERROR d", 20: "ERROR e"})
    put_lines("/app/api", {-1: "WARN slow upstream"})

    found = await run(log_tools, "log_events", filter_pattern="ERROR")
    assert [e["message"] for e in found["events"]] == ["ERROR a", "ERROR c", "ERROR d"]
    assert found["events"][0] == {
        "at": f"{CHANGE - timedelta(minutes=50):%Y-%m-%dT%H:%M:%S}Z",
        "stream": STREAM,
        "message": "ERROR a",
    }
    assert "truncated" not in found

    limited = await run(log_tools, "log_events", filter_pattern="ERROR", limit=2)
    assert [e["message"] for e in limited["events"]] == ["ERROR a", "ERROR c"]
    assert "truncated" in limited

    allowed = await run(log_tools, "log_events", log_group="/app/api")
    assert [e["message"] for e in allowed["events"]] == ["WARN slow upstream"]
    with pytest.raises(ValueError, match="'/apps/api' is not readable here"):
        await run(log_tools, "log_events", log_group="/apps/api")
    with pytest.raises(ValueError, match="not readable"):
        await run(log_tools, "logs_insights_query", query="fields @message", log_groups=["/x"])


async def test_the_logs_tools_exist_only_where_some_log_group_is_readable(
    store: SqliteStore, clock: ManualClock
):
    bare = tools(classic_alarm(), store, clock)
    assert {t.name for t in bare} == AWS_TOOLS - {"logs_insights_query", "log_events"}

    listed = tools(classic_alarm(), store, clock, log_groups=("/app/*",))
    assert {t.name for t in listed} == AWS_TOOLS
    with pytest.raises(ValueError, match="this alert has no log group of its own"):
        await run(listed, "log_events")


async def test_the_window_cap_is_the_setting(store: SqliteStore, clock: ManualClock):
    registry = tools(logs_alert(), store, clock, max_window=timedelta(hours=1))

    with pytest.raises(ValueError, match="70 minutes is wider than the cap of 60 minutes"):
        await run(registry, "log_events", minutes_before=60, minutes_after=10)
    with pytest.raises(ValueError, match="wider than the cap"):
        await run(registry, "metric_data", namespace="AWS/EC2", metric_name="CPU", minutes_after=1)


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("log_events", {"grep": "x"}, "unknown argument(s) grep; the arguments are: log_group"),
        ("log_events", {"limit": 0}, "limit must be an integer from 1 to 100"),
        ("log_events", {"limit": "5"}, "limit must be an integer from 1 to 100"),
        ("log_events", {"minutes_before": True}, "minutes_before must be an integer"),
        ("logs_insights_query", {}, "missing required argument(s): query"),
        ("logs_insights_query", {"query": "  "}, "query must be a non-empty string"),
        ("logs_insights_query", {"query": "x", "log_groups": "g"}, "log_groups must be a list"),
        ("metric_data", {"metric_name": "CPUUtilization"}, "give both namespace and metric_name"),
        ("metric_data", {"stat": "Median"}, "stat must be Average"),
        ("metric_data", {"dimensions": {"InstanceId": 1}}, "dimensions must be an object"),
        ("describe_alarms", {"state": "FIRING"}, "state must be one of ALARM, OK"),
        ("describe_alarms", {"alarm_names": ["a"], "alarm_name_prefix": "a"}, "not both"),
        (
            "alarm_history",
            {"alarm_name": "a", "hours_before": 500},
            "hours_before must be an integer from 1 to 168",
        ),
        ("recent_changes", {"minutes_before": 2000}, "minutes_before must be an integer"),
        ("deployments", {}, "give ecs_cluster and ecs_service together, or lambda_function"),
        ("deployments", {"ecs_cluster": "c"}, "give ecs_cluster and ecs_service together"),
        ("deployments", {"ecs_cluster": "c", "lambda_function": "f"}, "not both"),
    ],
)
async def test_bad_arguments_are_refused_before_any_aws_call(
    store: SqliteStore, clock: ManualClock, name: str, arguments: dict[str, Any], message: str
):
    registry = tools(logs_alert(), store, clock)
    with pytest.raises(ValueError) as refused:
        await run(registry, name, **arguments)
    assert message in str(refused.value)


# --- metrics and alarms ----------------------------------------------------------------------


def put_alarm(name: str = ALARM, threshold: float = 80.0) -> None:
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=DIMS,
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )


def stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%S}Z"


async def test_metric_data_defaults_to_the_alarms_own_metric(alarm_tools: ToolRegistry):
    values = put_cpu()

    own = await run(alarm_tools, "metric_data")

    assert own["metric"] == "AWS/EC2 CPUUtilization InstanceId=i-0abc1234 (Average, 60s)"
    assert (own["stat"], own["period_seconds"]) == ("Average", 60)
    in_window = [[stamp(t), v] for t, v in values.items() if t >= CHANGE - timedelta(minutes=60)]
    assert own["points"] == in_window

    named = await run(
        alarm_tools,
        "metric_data",
        namespace="AWS/EC2",
        metric_name="CPUUtilization",
        dimensions={"InstanceId": "i-0abc1234"},
        stat="Maximum",
        period_seconds=600,
        minutes_before=30,
        minutes_after=0,
    )
    assert named["stat"] == "Maximum" and named["period_seconds"] == 600
    assert [value for _, value in named["points"]] == [
        max(v for t, v in values.items() if start <= t < start + timedelta(minutes=10))
        for start in (CHANGE - timedelta(minutes=30 - 10 * i) for i in range(3))
    ]


async def test_metric_data_refuses_more_than_360_points(store: SqliteStore, clock: ManualClock):
    registry = tools(classic_alarm(), store, clock, max_window=timedelta(hours=12))
    with pytest.raises(
        ValueError, match="410 points per series, more than 360: raise period_seconds"
    ):
        await run(registry, "metric_data", minutes_before=400)
    found = await run(registry, "metric_data", minutes_before=400, period_seconds=120)
    assert found["period_seconds"] == 120


async def test_describe_alarms_by_state_and_prefix(alarm_tools: ToolRegistry):
    put_alarm()
    put_alarm("web-latency-high", threshold=2.5)
    put_alarm("db-cpu-high")
    boto3.client("cloudwatch").set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed: 3 datapoints > 80"
    )

    firing = await run(alarm_tools, "describe_alarms", state="ALARM")
    [alarm] = firing
    assert alarm == {
        "name": ALARM,
        "state": "ALARM",
        "reason": "Threshold Crossed: 3 datapoints > 80",
        "updated_at": alarm["updated_at"],
        "metric": "CPUUtilization",
        "namespace": "AWS/EC2",
        "dimensions": {"InstanceId": "i-0abc1234"},
        "threshold": 80.0,
        "comparison": "GreaterThanThreshold",
    }
    assert alarm["updated_at"].endswith("Z")
    web = await run(alarm_tools, "describe_alarms", alarm_name_prefix="web-")
    assert sorted(a["name"] for a in web) == [ALARM, "web-latency-high"]
    named = await run(alarm_tools, "describe_alarms", alarm_names=["db-cpu-high"])
    assert [a["name"] for a in named] == ["db-cpu-high"]


# --- wiring ----------------------------------------------------------------------------------


def offered(settings: dict[str, Any], store: SqliteStore, clock: ManualClock) -> set[str]:
    engine = build_engine(load_settings(**settings), store, None)
    alert = logs_alert()
    incident = IncidentService(store, clock=clock).record(alert).incident
    assert engine.tools is not None and incident is not None
    return {tool.name for tool in engine.tools.tools_for(incident, alert)}


def test_build_engine_offers_the_aws_tools_where_aws_is_configured(
    store: SqliteStore, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
):
    assert offered({}, store, clock) == AWS_TOOLS | {"past_incidents"}
    assert offered({"investigation_aws_tools": False}, store, clock) == {"past_incidents"}
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    assert offered({}, store, clock) == {"past_incidents"}
