"""SQS ingest through moto: alerts per second into DynamoDB, and SNS-to-Slack latency.

Starts moto's server on 127.0.0.1 (a free port) and measures two things:

1. Throughput. A queue is pre-loaded through an SNS topic with `--alerts` CloudWatch alarm
   notifications (moto wraps each one in the envelope SNS delivers to SQS with raw delivery
   off), built from the real samples in tests/fixtures/payloads: `--alarms` alarms, each going
   ALARM, OK, ALARM... with its StateChangeTime moving on, as CloudWatch notifies state
   changes, so an alarm's later notifications resolve and reopen its one incident. Then ONE
   `incident-bot run` process (STORE=dynamodb, console mode: no Slack; Claude is the local
   Messages API answering at once, or with `--offline` the offline analyzer) drains it, and
   then THREE processes on a fresh queue and table prefix. Timed from the first receive until
   the queue is empty (a message is deleted only once its alert is recorded); every alert is
   then counted in the store.
2. Latency. One process against the Slack emulator and the local Messages API (answering at
   once), with an SNS topic subscribed to its queue: `--incidents` alarms, each a new alarm
   name and so a new incident, published one at a time at `--rate` per second; latency runs
   from the publish call to the emulator's arrival of the incident's root `chat.postMessage`.

moto serves DynamoDB one request at a time here (DESIGN.md: it does not isolate concurrent
requests, and three processes race), and the bench adds up the CPU time moto spends per
operation; with each bot process's own CPU time, that says where the time goes. Costs of
moto that grow with the data and that AWS does not have are taken out (`lightened_moto` in
tests/fakes/moto_server.py; `--stock-moto` keeps them, and then a few hundred alerts already
take minutes).

    python bench/sqs.py [--alerts N] [--alarms A] [--incidents M] [--rate R] [--offline]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import moto  # noqa: E402

from bench.analysis import ANSWER  # noqa: E402
from incidents.dynamodb import DynamoStore  # noqa: E402
from incidents.models import Severity  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402
from tests.fakes.bot_process import BotProcess, slack_env  # noqa: E402
from tests.fakes.moto_server import (  # noqa: E402
    ACCOUNT,
    REGION,
    boto3_env,
    lightened_moto,
    moto_app,
    reset,
    serving,
)
from tests.fakes.slack_emulator import ApiCall, SlackEmulator  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "payloads" / "cloudwatch-alarm-sns"
TEMPLATES = (
    "rheoceros_sns-lambda_metric-alarm_ALARM.json",
    "lambda-go_cloudwatch-alarm-sns-payload-single-metric.json",
    "lambda-go_cloudwatch-alarm-sns-payload-multiple-metrics_metricmath.json",
)
REGION_NAME = "US East (N. Virginia)"
SERVICES = ["orders", "payments", "search", "checkout", "inventory", "auth", "billing"]
SYMPTOMS = ["5xx-rate", "p99-latency", "errors", "throttles", "queue-age", "cpu"]
TAGS = ["critical", "", "", "warning"]  # severity as teams tag it in alarm names; none: HIGH
TARGET_PER_PROCESS = 500
TARGET_P99_SECONDS = 1.0
# GetQueueAttributes costs moto time in proportion to the queue's depth: poll gently while
# the queue is long, often at the start and the end, where the timing is decided.
POLL_SECONDS = 1.0
POLL_SECONDS_NEAR_EDGES = 0.05
# The consumer's settings for the throughput runs (bot/settings.py defaults, but a short long
# poll: with a full queue a receive returns at once whatever the wait, and a short one lets
# the processes stop quickly once the queue is empty).
THROUGHPUT_SETTINGS = {
    "SQS_POLLERS": "2",
    "SQS_MAX_IN_FLIGHT": "50",
    "SQS_VISIBILITY_TIMEOUT": "60",
    "SQS_WAIT_SECONDS": "2",
}
LATENCY_SETTINGS = {
    "SQS_POLLERS": "2",
    "SQS_MAX_IN_FLIGHT": "50",
    "SQS_VISIBILITY_TIMEOUT": "60",
    "SQS_WAIT_SECONDS": "20",
    "UPDATE_INTERVAL": "10s",
    "SLACK_RESYNC_INTERVAL": "30s",
}


# -- moto, instrumented ----------------------------------------------------------------------


@dataclass
class Tally:
    """Per moto operation (`dynamodb GetItem`...): requests, 5xx answers, 4xx answers (a
    failed condition, a cancelled transaction: a write that lost a race), handler CPU seconds."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    refused: Counter[str] = field(default_factory=Counter)

    def __sub__(self, earlier: Tally) -> Tally:
        return Tally(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            defaultdict(float, {op: t - earlier.cpu.get(op, 0.0) for op, t in self.cpu.items()}),
            self.refused - earlier.refused,
        )

    def copy(self) -> Tally:
        return Tally(
            Counter(self.requests),
            Counter(self.errors),
            defaultdict(float, self.cpu),
            Counter(self.refused),
        )


class Moto:
    """moto's WSGI app behind a wrapper that serves DynamoDB requests one at a time and adds
    up, per operation, the requests, the 5xx answers and the CPU time of the serving thread
    (`thread_time`: a long poll waiting for messages costs nothing)."""

    def __init__(self) -> None:
        self._app = moto_app()
        self._dynamodb = threading.Lock()
        self._tally = threading.Lock()
        self.tally = Tally()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        operation = self.operation(environ)
        status: list[str] = []

        def recording_start_response(code: str, *args: Any) -> Any:
            status.append(code)
            return start_response(code, *args)

        started = time.thread_time()
        if operation.startswith("dynamodb "):
            with self._dynamodb:
                body = list(self._app(environ, recording_start_response))
        else:
            body = list(self._app(environ, recording_start_response))
        spent = time.thread_time() - started
        with self._tally:
            self.tally.cpu[operation] += spent
            self.tally.requests[operation] += 1
            if status and status[0].startswith("5"):
                self.tally.errors[operation] += 1
            elif status and status[0].startswith("4"):
                self.tally.refused[operation] += 1
        return body

    def snapshot(self) -> Tally:
        with self._tally:
            return self.tally.copy()

    def operation(self, environ: dict[str, Any]) -> str:
        """What a request is counted under, `<service> <action>`: a subclass may add detail
        after them."""
        return _operation(environ)


def _operation(environ: dict[str, Any]) -> str:
    """`dynamodb TransactWriteItems`, `sqs ReceiveMessage`, `sns PublishBatch`...: from the
    JSON protocol's target header, else from the query protocol's form body (put back)."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if "." in target:
        prefix, action = target.split(".", 1)
        service = "dynamodb" if prefix.startswith("DynamoDB") else prefix.removeprefix("Amazon")
        return f"{service.lower()} {action}"
    credential = str(environ.get("HTTP_AUTHORIZATION", "")).split("Credential=", 1)[-1]
    scope = credential.split(",", 1)[0].split("/")
    service = scope[3] if len(scope) > 3 else "moto"
    action = "?"
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
    return f"{service} {action}"


@contextmanager
def moto_server(app: Moto | None = None) -> Iterator[tuple[str, Moto]]:
    """`app` (a fresh `Moto` by default) served on 127.0.0.1: its endpoint, and the app."""
    moto_logger = logging.getLogger("werkzeug")  # one line per request otherwise
    moto_logger.setLevel(logging.CRITICAL)
    app = app or Moto()
    with serving(app) as endpoint:
        yield endpoint, app


# -- alarms as CloudWatch sends them -----------------------------------------------------------


@dataclass
class Alarm:
    """One CloudWatch alarm and where it stands: each notification is its next state change."""

    name: str
    template: dict[str, Any]
    state: str = "INSUFFICIENT_DATA"
    changed_at: datetime = field(default_factory=lambda: datetime(2026, 11, 24, 8, tzinfo=UTC))

    def next_notification(self, rng: random.Random, *, alarm_only: bool = False) -> tuple[str, str]:
        """(Subject, Message) of its next state change, as CloudWatch publishes them to SNS.
        With `alarm_only`, each is the alarm going into ALARM again, as an alarm notifies
        whose only action is its AlarmActions: the OK in between notified nobody."""
        new = "OK" if self.state == "ALARM" and not alarm_only else "ALARM"
        old = "OK" if new == self.state else self.state
        self.changed_at += timedelta(
            seconds=rng.randrange(60, 600), milliseconds=rng.randrange(1000)
        )
        alarm = dict(self.template)
        reason = str(self.template["NewStateReason"])
        if new == "OK":
            reason = reason.replace("was greater", "was not greater").replace(
                "OK -> ALARM", "ALARM -> OK"
            )
        alarm.update(
            AlarmName=self.name,
            AlarmDescription=f"{self.name.replace('-', ' ')} over its threshold",
            AWSAccountId=ACCOUNT,
            NewStateValue=new,
            OldStateValue=old,
            NewStateReason=reason,
            StateChangeTime=self.changed_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
            Region=REGION_NAME,
            AlarmArn=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{self.name}",
        )
        self.state = new
        return f'{new}: "{self.name}" in {REGION_NAME}', json.dumps(alarm)


def alarms(count: int, rng: random.Random, prefix: str = "") -> list[Alarm]:
    templates = [
        json.loads(json.loads((FIXTURES / name).read_text())["Records"][0]["Sns"]["Message"])
        for name in TEMPLATES
    ]
    found = []
    for n in range(count):
        service = SERVICES[n % len(SERVICES)]
        symptom = SYMPTOMS[n // len(SERVICES) % len(SYMPTOMS)]
        tag = TAGS[n % len(TAGS)]
        name = "-".join(part for part in (prefix, service, symptom, tag) if part)
        if n >= len(SERVICES) * len(SYMPTOMS):
            name += f"-{n}"
        found.append(Alarm(name, rng.choice(templates)))
    return found


def notifications(
    total: int, alarm_count: int, seed: int, *, alarm_only: bool = False
) -> list[tuple[str, str]]:
    """`total` notifications from `alarm_count` alarms, interleaved at random, each alarm's own
    in the order of its state changes (`Alarm.next_notification`)."""
    rng = random.Random(seed)
    pool = alarms(alarm_count, rng)
    return [rng.choice(pool).next_notification(rng, alarm_only=alarm_only) for _ in range(total)]


# -- AWS resources ------------------------------------------------------------------------------


@dataclass
class Aws:
    endpoint: str
    env: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def queue_and_topic(
        self, name: str, attributes: dict[str, str] | None = None
    ) -> tuple[str, str]:
        """A queue (with `attributes`) subscribed to a topic, raw delivery off (the default):
        the SNS envelope."""
        sqs, sns = self.client("sqs"), self.client("sns")
        queue_url = str(sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"])
        topic = str(sns.create_topic(Name=f"{name}-alarms")["TopicArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=self.queue_arn(queue_url))
        return queue_url, topic

    def queue_arn(self, queue_url: str) -> str:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]
        return str(attributes["QueueArn"])

    def store(self, prefix: str, *, create: bool = False) -> DynamoStore:
        store = DynamoStore(prefix, endpoint_url=self.endpoint)
        if create:
            store.create_tables()
        return store

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight)."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


def publish_all(
    sns: Any, topic: str, bodies: list[tuple[str, str]], published: list[int] | None = None
) -> None:
    """(Subject, Message) pairs to the topic, ten per PublishBatch as a storm's sender would;
    `published[0]` counts those accepted so far, for a caller watching from another thread."""
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(n), "Subject": subject, "Message": message}
            for n, (subject, message) in enumerate(bodies[start : start + 10])
        ]
        answer = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"SNS refused part of a batch: {answer['Failed']}")
        if published is not None:
            published[0] += len(entries)


def log_problems(bots: Iterable[BotProcess]) -> Counter[str]:
    """The bots' warnings and errors, counted by their first 60 characters."""
    problems: Counter[str] = Counter()
    for bot in bots:
        for line in bot.lines:
            for level in ("ERROR", "WARNING"):
                if f" {level} " in line:
                    problems[f"{level} {line.split(level, 1)[1].strip()[:60]}"] += 1
    return problems


def bot_env(aws: Aws, base: dict[str, str], queue_url: str, prefix: str) -> dict[str, str]:
    """`base` (the bench's environment, or `slack_env`'s) pointed at moto: the store, the
    queue, and boto3 with fake credentials."""
    env = {key: value for key, value in base.items() if not key.startswith(("AWS_", "SQS_"))}
    env.update(aws.env)
    env.update(
        STORE="dynamodb",
        DYNAMODB_TABLE_PREFIX=prefix,
        ALERT_QUEUE_URL=queue_url,
        WEBHOOK_PORT="0",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- (a) throughput ----------------------------------------------------------------------------


@dataclass
class Throughput:
    processes: int
    alerts: int
    recorded: int
    incidents: int
    dead_letters: int
    load_seconds: float
    elapsed: float
    steady: float
    quarters: list[float]
    bot_cpu: float
    bench_cpu: float
    """CPU time of this process, which is mostly moto's server threads."""
    moto: Tally
    log_problems: Counter[str]

    @property
    def rate(self) -> float:
        return self.alerts / self.elapsed


async def throughput(
    aws: Aws,
    server: Moto,
    processes: int,
    bodies: list[tuple[str, str]],
    workdir: Path,
    claude_url: str | None,
) -> Throughput:
    name = f"bench-{processes}p"
    store = aws.store(name, create=True)
    queue_url, topic = aws.queue_and_topic(name)
    sns = aws.client("sns")
    loading = time.perf_counter()
    publish_all(sns, topic, bodies)
    load_seconds = time.perf_counter() - loading
    total = len(bodies)
    if sum(aws.depth(queue_url)) != total:
        raise RuntimeError(f"the queue holds {aws.depth(queue_url)}, not {total} messages")
    console = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "ANTHROPIC_", "WEBHOOK_", "JIRA_", "EMAIL_"))
    }
    env = bot_env(aws, console, queue_url, name)
    env.update(THROUGHPUT_SETTINGS)
    if claude_url is not None:
        env.update(ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=claude_url)
    bots = [BotProcess(env, workdir / f"{name}-{n}.db") for n in range(processes)]
    samples: list[tuple[float, int]] = []
    try:
        await asyncio.gather(*(bot.start(wait_connected=False) for bot in bots))
        first: float | None = None
        cpu_at_first = bench_at_first = 0.0
        moto_at_first = server.snapshot()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            visible, in_flight = await asyncio.to_thread(aws.depth, queue_url)
            now = time.monotonic()
            if first is None and visible < total:
                first = now
                cpu_at_first = sum(cpu_seconds(bot.process.pid) for bot in bots)
                bench_at_first = time.process_time()
                moto_at_first = server.snapshot()
            if first is not None:
                samples.append((now, visible + in_flight))
            if visible + in_flight == 0:
                break
            near_edge = first is None or visible + in_flight < total // 20
            await asyncio.sleep(POLL_SECONDS_NEAR_EDGES if near_edge else POLL_SECONDS)
        else:
            raise RuntimeError(f"{processes} process(es) did not drain the queue in 600 s")
        assert first is not None
        last = samples[-1][0]
        bot_cpu = sum(cpu_seconds(bot.process.pid) for bot in bots) - cpu_at_first
        bench_cpu = time.process_time() - bench_at_first
        moto_end = server.snapshot()
    finally:
        await asyncio.gather(*(bot.stop_if_started() for bot in bots))
    since = datetime(2000, 1, 1, tzinfo=UTC)
    recorded = sum(len(store.alerts_by_severity(s, since, limit=total + 1)) for s in Severity)
    incidents = len(store.list_incidents(limit=total + 1))
    dead_letters = len(store.dead_letters(limit=total + 1))
    store.close()
    problems = log_problems(bots)
    return Throughput(
        processes=processes,
        alerts=total,
        recorded=recorded,
        incidents=incidents,
        dead_letters=dead_letters,
        load_seconds=load_seconds,
        elapsed=last - first,
        steady=_rate_between(samples, total, 0.9, 0.1),
        quarters=[_rate_between(samples, total, q, q - 0.25) for q in (1.0, 0.75, 0.5, 0.25)],
        bot_cpu=bot_cpu,
        bench_cpu=bench_cpu,
        moto=moto_end - moto_at_first,
        log_problems=problems,
    )


def _rate_between(samples: list[tuple[float, int]], total: int, high: float, low: float) -> float:
    """Alerts per second while the queue went from `high` to `low` (shares of `total`)."""

    def crossing(share: float) -> float:
        return next(t for t, left in samples if left <= share * total)

    start, end = crossing(high), crossing(low)
    return (high - low) * total / (end - start) if end > start else float("nan")


# -- (b) latency ------------------------------------------------------------------------------


@dataclass
class Latency:
    published: int
    posted: int
    rate: float
    latencies: list[float]
    moto: Tally


async def latency(aws: Aws, server: Moto, incidents: int, rate: float, workdir: Path) -> Latency:
    name = "bench-latency"
    aws.store(name, create=True).close()
    queue_url, topic = aws.queue_and_topic(name)
    sns = aws.client("sns")
    pool = alarms(incidents, random.Random(3), prefix="new")
    published: dict[str, float] = {}
    async with (
        FakeAnthropic(default_tool_input=ANSWER) as claude,
        SlackEmulator(channels=("C1",)) as slack,
    ):
        env = slack_env(workdir, slack.api_url)
        env = bot_env(aws, env, queue_url, name)
        env.update(
            LATENCY_SETTINGS, ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=claude.url
        )
        bot = BotProcess(env, workdir / "latency.db")
        before = server.snapshot()
        try:
            await bot.start()
            rng = random.Random(4)
            started = time.monotonic()
            for n, alarm in enumerate(pool):
                await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
                subject, message = alarm.next_notification(rng)
                published[alarm.name] = time.monotonic()
                await asyncio.to_thread(
                    sns.publish, TopicArn=topic, Subject=subject, Message=message
                )

            def all_posted() -> bool:
                return len(root_posts(slack.calls)) >= incidents

            await slack.wait_for(all_posted, timeout=60 + incidents / rate)
        finally:
            await bot.stop_if_started()
        after = server.snapshot()
    posts = root_posts(slack.calls)
    latencies = []
    for alarm_name, sent in published.items():
        arrived = [call.time for call in posts if alarm_name in str(call.params.get("text", ""))]
        if arrived:
            latencies.append(min(arrived) - sent)
    return Latency(
        published=len(published),
        posted=len(latencies),
        rate=rate,
        latencies=sorted(latencies),
        moto=after - before,
    )


def root_posts(calls: Iterable[ApiCall]) -> list[ApiCall]:
    """Each accepted chat.postMessage that starts a message (not in a thread)."""
    return [
        call
        for call in calls
        if call.method == "chat.postMessage" and call.ok and not call.params.get("thread_ts")
    ]


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- report ------------------------------------------------------------------------------------


def print_throughput(runs: list[Throughput], alarm_count: int, *, offline: bool) -> None:
    analyzer = "offline analyzer" if offline else "Claude fake answering at once"
    print(f"SQS -> DynamoDB: incident-bot run in console mode (no Slack), {analyzer}")
    print(
        f"alerts per run          {runs[0].alerts:>9,}   from {alarm_count} alarms, SNS-enveloped"
    )
    print("settings                " + " ".join(f"{k}={v}" for k, v in THROUGHPUT_SETTINGS.items()))

    def row(label: str, values: Iterable[str], note: str = "") -> None:
        print(f"{label:<24}" + "".join(f"{v:>16}" for v in values) + (f"   {note}" if note else ""))

    row("", (f"{r.processes} process{'es' if r.processes > 1 else ''}" for r in runs))
    target = f"(target >= {TARGET_PER_PROCESS} per process)"
    row("alerts per second", (f"{r.rate:,.1f}" for r in runs), target)
    row("  10% to 90% drained", (f"{r.steady:,.1f}" for r in runs))
    row("  first, last quarter", (f"{r.quarters[0]:,.0f}, {r.quarters[3]:,.0f}" for r in runs))
    row("elapsed, s", (f"{r.elapsed:,.1f}" for r in runs), "(first receive to empty queue)")
    row("alerts recorded", (f"{r.recorded:,}" for r in runs))
    row("incidents", (f"{r.incidents:,}" for r in runs))
    row("dead letters", (f"{r.dead_letters:,}" for r in runs))
    row("queue pre-load, s", (f"{r.load_seconds:,.1f}" for r in runs), "(not timed above)")
    row("CPU, % of one core", ())
    row("  bot processes", (f"{100 * r.bot_cpu / r.elapsed:,.0f}%" for r in runs), "(together)")
    row("  moto", (f"{100 * r.bench_cpu / r.elapsed:,.0f}%" for r in runs), "(this process)")
    row("CPU per alert, ms", ())
    row("  bot processes", (f"{1000 * r.bot_cpu / r.alerts:,.1f}" for r in runs))
    row("  moto", (f"{1000 * r.bench_cpu / r.alerts:,.1f}" for r in runs))
    row(
        "  moto in handlers",
        (f"{1000 * sum(r.moto.cpu.values()) / r.alerts:,.1f}" for r in runs),
        "(the rest: HTTP, threads)",
    )
    row(
        "moto requests per alert",
        (f"{sum(r.moto.requests.values()) / r.alerts:,.2f}" for r in runs),
        "(x CPU in handler per request)",
    )
    operations = sorted(
        {op for r in runs for op in r.moto.requests},
        key=lambda op: -sum(r.moto.cpu[op] for r in runs),
    )
    for op in operations[:8]:
        row(f"  {op.split(' ', 1)[1]}", (_per_alert(r, op) for r in runs))
    for r in runs:
        for problem, count in r.log_problems.most_common(5):
            print(f"  {r.processes} process(es) logged {count:>5} x {problem}")
        for op, count in r.moto.errors.items():
            print(f"  {r.processes} process(es): moto answered 5xx to {count} x {op}")
        for op, count in r.moto.refused.most_common(3):
            # A refused TransactWriteItems (a write that lost a race) takes moto's own path,
            # which deep-copies the table (`lightened_moto`): its ms above are mostly these.
            print(f"  {r.processes} process(es): moto refused (4xx) {count} x {op}")


def _per_alert(run: Throughput, operation: str) -> str:
    requests = run.moto.requests[operation]
    each = 1000 * run.moto.cpu[operation] / max(1, requests)
    return f"{requests / run.alerts:.2f} x{each:5.1f}ms"


def print_latency(result: Latency) -> None:
    print()
    print("SNS publish -> Slack chat.postMessage, one process, Claude fake answering at once")
    settings = " ".join(f"{k}={v}" for k, v in LATENCY_SETTINGS.items())
    print(f"settings                {settings}")
    print(f"new incidents published {result.published:>9,}   at {result.rate:g} per second")
    print(f"root posts received     {result.posted:>9,}")
    if result.latencies:
        print(f"p50                     {percentile(result.latencies, 0.50):>9.3f} s")
        print(
            f"p99                     {percentile(result.latencies, 0.99):>9.3f} s"
            f"   (target <= {TARGET_P99_SECONDS:g} s)"
        )
        print(f"max                     {result.latencies[-1]:>9.3f} s")
    requests = sum(result.moto.requests.values())
    print(f"moto requests per incident {requests / max(1, result.published):>6.1f}")


async def bench(args: argparse.Namespace) -> None:
    lightening = nullcontext() if args.stock_moto else lightened_moto()
    with lightening, moto_server() as (endpoint, server), tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        aws = Aws(endpoint, boto3_env(endpoint, workdir / "no-aws-config"))
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(aws.env)  # this process's boto3 clients too: moto, fake credentials
        bodies = notifications(args.alerts, args.alarms, args.seed)
        runs = []
        async with FakeAnthropic(default_tool_input=ANSWER) as claude:
            for processes in (1, 3):
                reset(endpoint)
                claude_url = None if args.offline else claude.url
                runs.append(await throughput(aws, server, processes, bodies, workdir, claude_url))
        print_throughput(runs, args.alarms, offline=args.offline)
        reset(endpoint)
        print_latency(await latency(aws, server, args.incidents, args.rate, workdir))
    print()
    print(
        f"moto {moto.__version__} on 127.0.0.1, "
        + ("stock" if args.stock_moto else "lightened (see lightened_moto)")
        + f"; {os.cpu_count()} cores, shared with other work"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--alarms", type=int, default=30)
    parser.add_argument("--incidents", type=int, default=150)
    # One new incident a second: Slack's pace for posts in one channel, which the bot keeps.
    parser.add_argument("--rate", type=float, default=1.0, help="new incidents per second")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--stock-moto",
        action="store_true",
        help="keep moto's costs that grow with the data (slow: use a few hundred alerts)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="throughput runs without Claude: the offline analyzer, whose analyses are not cached",
    )
    args = parser.parse_args()
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
