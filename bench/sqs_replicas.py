"""Issue 13's SQS and DynamoDB targets in one run: three replicas, an alarm storm, a SIGKILL.

`--alerts` CloudWatch alarm notifications from `--problems` alarms (the real samples of
tests/fixtures/payloads, as bench/sqs.py builds them; each notification is its alarm going
into ALARM again, so every one counts in its alarm's one incident) are published to SNS, ten
per PublishBatch, into the SQS queue (with its DLQ, as deploy/template.yaml makes it) of three
`incident-bot run` replicas: STORE=dynamodb, the Slack emulator, the local Messages API
answering at once, on moto serving DynamoDB one request at a time as
tests/integration/test_replicas.py runs them. Once a quarter of the messages has left the
queue, one replica is killed with SIGKILL. Measured against the targets:

- DynamoDB requests per alert, counted at moto's server by their `X-Amz-Target`, from the first
  publish until every incident's message shows its final count, by operation and by the items
  each touches (the ingest's writes, the Slack sync's reads, the leases);
- the time from the first publish to the queue empty (visible + in flight = 0);
- the occurrences in the store, and the root posts (chat.postMessage outside a thread) per
  incident in the emulator;
- `GET /healthz` of each survivor every 100 ms from before the first publish until settled,
  from a process of its own (bench/healthz_probe.py): max, p99, failures, the slowest;
- SIGTERM to exit of each survivor (both signalled at once), with its "stopping" lines.

The replicas run the bot's defaults (SQS_POLLERS=2, SQS_MAX_IN_FLIGHT=50, SQS_WAIT_SECONDS=20,
UPDATE_INTERVAL=10s, SLACK_RESYNC_INTERVAL=30s, REPLICA_LEASE=30s), the queue's visibility
timeout being `--visibility-timeout` (deploy/template.yaml's default, 20 s, unless told).

    python bench/sqs_replicas.py [--alerts 1000] [--problems 10] [--visibility-timeout 20]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import moto  # noqa: E402

from bench.analysis import ANSWER  # noqa: E402
from bench.healthz_probe import Sample  # noqa: E402
from bench.sqs import (  # noqa: E402
    Aws,
    Moto,
    Tally,
    bot_env,
    log_problems,
    moto_server,
    notifications,
    percentile,
    publish_all,
    root_posts,
)
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402
from tests.fakes.bot_process import BotProcess, slack_env  # noqa: E402
from tests.fakes.moto_server import boto3_env, lightened_moto  # noqa: E402
from tests.fakes.slack_emulator import SlackEmulator  # noqa: E402

REPLICAS = 3
CHANNEL = "C1"
MAX_RECEIVE_COUNT = 5  # deploy/template.yaml's default
TARGET_REQUESTS_PER_ALERT = 0.3
TARGET_DRAIN_SECONDS = 60.0
TARGET_HEALTHZ_SECONDS = 1.0
TARGET_STOP_SECONDS = 10.0
PROBE_EVERY = 0.1
DEPTH_POLL = 0.2
"""Seconds between the queue depth reads that time the drain (GetQueueAttributes is cheap on
the lightened moto, but each one is a request moto serves beside the replicas')."""
DRAIN_LIMIT = 300.0
SETTLE_LIMIT = 120.0
"""Seconds after the drain for every message to show its count: an update interval, and a
lease (30 s) when the killed replica held an incident's."""
# Defaults of bot/settings.py that slack_env shortens for the tests, put back: the resync
# pass and the coalesced updates read the store, and the target counts those reads.
REPLICA_SETTINGS = {"UPDATE_INTERVAL": "10s", "SLACK_RESYNC_INTERVAL": "30s"}
_OCCURRENCES = re.compile(r"\*Occurrences\*\\n([\d,]+)")
_LOGGED = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
"""The time at the start of a bot's log line (bot/logs.py, text format; local time)."""


# -- DynamoDB requests by the items they touch ------------------------------------------------


class KeyedMoto(Moto):
    """`Moto` counting each DynamoDB request under its operation and the kinds of item it
    touches (`dynamodb GetItem INC/MESSAGE`, `dynamodb PutItem LEASE slack`...), read from
    the request's keys: which path of the bot a request comes from."""

    def operation(self, environ: dict[str, Any]) -> str:
        operation = super().operation(environ)
        if not operation.startswith("dynamodb "):
            return operation
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return operation
        items = _items(operation.split(" ", 1)[1], request)
        return f"{operation} {items}" if items else operation


def _items(action: str, request: dict[str, Any]) -> str:
    """`INC/INCIDENT+OCC/OCCURRENCE`: the kinds of item a request names, for the store's
    single-table layout (incidents/dynamodb/table.py); a query, by index and partition."""
    keys: list[dict[str, Any]] = []
    if action in ("GetItem", "UpdateItem", "DeleteItem"):
        keys = [request.get("Key", {})]
    elif action == "PutItem":
        keys = [request.get("Item", {})]
    elif action == "BatchGetItem":
        keys = [key for table in request.get("RequestItems", {}).values() for key in table["Keys"]]
    elif action == "TransactWriteItems":
        keys = [
            action.get("Key") or action.get("Item") or {}
            for item in request.get("TransactItems", [])
            for action in item.values()
        ]
    elif action == "Query":
        values = request.get("ExpressionAttributeValues", {})
        partition = next((v.get("S", "") for k, v in values.items() if k in (":p", ":pk")), "")
        return f"{request.get('IndexName', 'table')}:{partition.split('#', 1)[0]}"
    kinds = dict.fromkeys(_kind(key) for key in keys if "pk" in key)
    return "+".join(sorted(kinds))


def _kind(key: dict[str, Any]) -> str:
    pk = str(key["pk"].get("S", ""))
    sk = str(key.get("sk", {}).get("S", ""))
    if pk.startswith("LEASE#"):
        name = pk.removeprefix("LEASE#")
        return f"LEASE {name if name.startswith('job:') else name.split(':', 1)[0]}"
    return f"{pk.split('#', 1)[0]}/{sk.split('#', 1)[0]}"


def dynamodb(counts: Counter[str]) -> Counter[str]:
    """The DynamoDB part of a tally's counts, by operation and items."""
    return Counter(
        {op.removeprefix("dynamodb "): n for op, n in counts.items() if op.startswith("dynamodb ")}
    )


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Stop:
    name: str
    seconds: float | None
    """SIGTERM to exit; None when the process did not end within BotProcess's 30 s."""
    code: int | None
    lines: list[str]
    """Its "stopping" and "stopped" lines, each with its time after the signal."""


@dataclass
class Drain:
    killed_after: float
    consumed_at_kill: int
    drained: float | None
    """Seconds from the first publish to the queue empty; None if not within DRAIN_LIMIT."""
    depth: list[tuple[float, int, int, int]]
    """(seconds, published, visible, in flight) at each depth read."""


@dataclass
class Storm:
    alerts: int
    problems: int
    drain: Drain
    settled: float | None
    """Seconds from the first publish until every message showed its final count."""
    during: Tally
    """moto's tally from the first publish to the drain..."""
    after: Tally
    """...from the drain until every message showed its final count..."""
    total: Tally
    """...and the two together."""
    incidents: dict[str, int]
    """Occurrences per incident, from its record."""
    occurrence_records: int
    root_posts: Counter[str]
    """Root posts per incident id."""
    shown: dict[str, int]
    dead_letters: int
    dlq: int
    slack_calls: Counter[str]
    claude_calls: int
    healthz: dict[str, list[Sample]]
    stops: list[Stop]
    log_problems: Counter[str]
    first_publish: float
    """time.time() of the first publish, to place probe samples."""


async def publish_and_drain(
    aws: Aws,
    topic: str,
    queue_url: str,
    bodies: list[tuple[str, str]],
    victim: BotProcess,
    started: float,
) -> Drain:
    """Publish the storm from a thread and read the queue's depth meanwhile: SIGKILL the
    victim once a quarter of the storm has left the queue, and return at the queue empty."""
    published = [0]
    publishing = asyncio.create_task(
        asyncio.to_thread(publish_all, aws.client("sns"), topic, bodies, published)
    )
    depth: list[tuple[float, int, int, int]] = []
    kill: tuple[float, int] | None = None
    drained: float | None = None
    while time.monotonic() - started < DRAIN_LIMIT:
        # Read before the depth: a message published after it would count as consumed.
        done, sent = publishing.done(), published[0]
        visible, in_flight = await asyncio.to_thread(aws.depth, queue_url)
        now = time.monotonic() - started
        depth.append((now, sent, visible, in_flight))
        if kill is None and sent - visible - in_flight >= len(bodies) // 4:
            victim.process.send_signal(signal.SIGKILL)
            kill = (now, sent - visible - in_flight)
        if done and visible + in_flight == 0:
            drained = now
            break
        await asyncio.sleep(DEPTH_POLL)
    await publishing
    if kill is None:
        raise RuntimeError("a quarter of the storm never left the queue: no replica was killed")
    return Drain(kill[0], kill[1], drained, depth)


async def storm(aws: Aws, server: KeyedMoto, args: argparse.Namespace, workdir: Path) -> Storm:
    name = "replicas"
    store = aws.store(name, create=True)
    dlq_url = str(aws.client("sqs").create_queue(QueueName=f"{name}-dlq")["QueueUrl"])
    redrive = {"deadLetterTargetArn": aws.queue_arn(dlq_url), "maxReceiveCount": MAX_RECEIVE_COUNT}
    queue_url, topic = aws.queue_and_topic(
        name,
        {"VisibilityTimeout": str(args.visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )
    bodies = notifications(args.alerts, args.problems, args.seed, alarm_only=True)
    async with (
        FakeAnthropic(default_tool_input=ANSWER) as claude,
        SlackEmulator(channels=(CHANNEL,)) as slack,
    ):
        env = bot_env(
            aws, slack_env(workdir, slack.api_url, SLACK_CHANNEL=CHANNEL), queue_url, name
        )
        env.update(
            REPLICA_SETTINGS,
            SQS_VISIBILITY_TIMEOUT=str(args.visibility_timeout),
            ANTHROPIC_API_KEY="sk-ant-bench",
            ANTHROPIC_BASE_URL=claude.url,
        )
        bots = [BotProcess(env, workdir / f"unused-{n}.db") for n in range(REPLICAS)]
        victim, survivors = bots[0], bots[1:]
        probe: asyncio.subprocess.Process | None = None
        try:
            await asyncio.gather(*(bot.start() for bot in bots))
            probe = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.healthz_probe",
                "--every",
                str(PROBE_EVERY),
                *(f"http://127.0.0.1:{bot.port}/healthz" for bot in survivors),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(1)  # a few probes of the idle replicas first
            before = server.snapshot()
            first_publish, started = time.time(), time.monotonic()
            drain = await publish_and_drain(aws, topic, queue_url, bodies, victim, started)
            at_drain = server.snapshot()
            shown: dict[str, int] = {}
            settled: float | None = None
            if drain.drained is not None:
                try:
                    shown = await slack.wait_for(
                        lambda: _settled(slack, args.alerts, args.problems), SETTLE_LIMIT
                    )
                    settled = time.monotonic() - started
                except TimeoutError:
                    shown = _shown(slack)
            at_settled = server.snapshot()
            assert probe.stdin is not None and probe.stdout is not None
            probe.stdin.close()
            healthz = json.loads(await probe.stdout.read())
            await probe.wait()
            stops = await asyncio.gather(
                *(_stop(bot, f"replica {n}") for n, bot in enumerate(survivors, 2))
            )
        finally:
            if probe is not None and probe.returncode is None:
                probe.kill()
                await probe.wait()
            # The victim, or every replica after a failure.
            await asyncio.gather(*(bot.stop_if_started() for bot in bots))
        slack_calls = Counter(call.method for call in slack.calls)
        roots = Counter(
            str(call.params["metadata"]["event_payload"]["incident_id"])
            for call in root_posts(slack.calls)
        )
        claude_calls = len(claude.requests)
    incidents = {i.id: i.occurrences for i in store.list_incidents(limit=args.alerts + 1)}
    records = sum(len(store.occurrences(i, limit=args.alerts + 1)) for i in incidents)
    dead_letters = len(store.dead_letters(limit=args.alerts + 1))
    store.close()
    return Storm(
        alerts=args.alerts,
        problems=args.problems,
        drain=drain,
        settled=settled,
        during=at_drain - before,
        after=at_settled - at_drain,
        total=at_settled - before,
        incidents=incidents,
        occurrence_records=records,
        root_posts=roots,
        shown=shown,
        dead_letters=dead_letters,
        dlq=sum(aws.depth(dlq_url)),
        slack_calls=slack_calls,
        claude_calls=claude_calls,
        healthz=healthz,
        stops=stops,
        log_problems=log_problems(bots),
        first_publish=first_publish,
    )


def _shown(slack: SlackEmulator) -> dict[str, int]:
    """The occurrences each incident's message shows now, by incident id."""
    shown: dict[str, int] = {}
    for call in root_posts(slack.calls):
        incident_id = str(call.params["metadata"]["event_payload"]["incident_id"])
        message = slack.message(str(call.response["ts"]))
        found = _OCCURRENCES.search(json.dumps(message.blocks))
        if found:
            shown[incident_id] = int(found[1].replace(",", ""))
    return shown


def _settled(slack: SlackEmulator, alerts: int, problems: int) -> dict[str, int] | None:
    """Every incident's message showing its count, the counts adding up to every alert: read
    from the emulator, so that waiting for it adds no request to the store."""
    shown = _shown(slack)
    return shown if len(shown) == problems and sum(shown.values()) == alerts else None


async def _stop(bot: BotProcess, name: str) -> Stop:
    """SIGTERM (unless the process is dead already) and its exit, timed."""
    try:
        code: int | None = await bot.stop()
    except AssertionError:  # not stopped within 30 s: BotProcess killed it
        code = None
    seconds = None
    if bot.terminated_at is not None and bot.exited_at is not None:
        seconds = bot.exited_at - bot.terminated_at
    lines = []
    if bot.terminated_at is not None:
        for line in bot.lines:
            logged = _LOGGED.match(line)
            if logged and (" stopping" in line or line.endswith(": stopped")):
                at = datetime.strptime(logged[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                lines.append(f"+{at - bot.terminated_at:6.2f} s  {line[len(logged[0]) :]}")
    return Stop(name, seconds, code, lines)


# -- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISS"


def targets(result: Storm) -> list[tuple[str, str, bool]]:
    """(target, what was measured, whether it holds), in the order issue 13 lists them."""
    alerts = result.alerts
    requests = dynamodb(result.total.requests)
    per_alert = sum(requests.values()) / alerts
    occurrences = sum(result.incidents.values())
    one_post_each = (
        len(result.incidents) == result.problems
        and set(result.root_posts) == set(result.incidents)
        and all(count == 1 for count in result.root_posts.values())
    )
    rows: list[tuple[str, str, bool]] = [
        (
            f"DynamoDB requests per alert <= {TARGET_REQUESTS_PER_ALERT:g}",
            f"{per_alert:.3f}  ({sum(requests.values()):,} requests)",
            per_alert <= TARGET_REQUESTS_PER_ALERT,
        ),
        (
            f"queue drained within {TARGET_DRAIN_SECONDS:g} s",
            f"{result.drain.drained:.1f} s"
            if result.drain.drained is not None
            else f"> {DRAIN_LIMIT:g} s",
            result.drain.drained is not None and result.drain.drained <= TARGET_DRAIN_SECONDS,
        ),
        (
            f"occurrences total = {alerts:,}",
            f"{occurrences:,}  ({result.occurrence_records:,} records)",
            occurrences == alerts and result.occurrence_records == alerts,
        ),
        (
            "one root post per alarm",
            f"{sum(result.root_posts.values())} root posts, {len(result.incidents)} incidents "
            f"of {result.problems} alarms",
            one_post_each,
        ),
    ]
    for url, samples in result.healthz.items():
        latencies = sorted(latency for _, latency, _ in samples)
        failures = [s for s in samples if s[2] != 200]
        name = _replica(result, url)
        rows.append(
            (
                f"{name} /healthz within {TARGET_HEALTHZ_SECONDS:g} s",
                f"max {latencies[-1]:.3f} s, p99 {percentile(latencies, 0.99):.3f} s, "
                f"{len(failures)} failed of {len(samples)}",
                not failures and latencies[-1] <= TARGET_HEALTHZ_SECONDS,
            )
        )
    for ended in result.stops:
        rows.append(
            (
                f"{ended.name} SIGTERM to exit within {TARGET_STOP_SECONDS:g} s",
                f"{ended.seconds:.2f} s, exit code {ended.code}"
                if ended.seconds is not None
                else "not within 30 s (killed)",
                ended.seconds is not None
                and ended.seconds <= TARGET_STOP_SECONDS
                and ended.code == 0,
            )
        )
    return rows


def print_storm(result: Storm, args: argparse.Namespace) -> None:
    alerts = result.alerts
    print(
        f"{alerts:,} CloudWatch alarm notifications from {result.problems} alarms, SNS -> SQS -> "
        f"{REPLICAS} replicas of incident-bot run (STORE=dynamodb, Slack emulator)"
    )
    print(
        f"moto {moto.__version__}, DynamoDB served one request at a time; queue "
        f"VisibilityTimeout={args.visibility_timeout} s, DLQ after {MAX_RECEIVE_COUNT} receives; "
        f"bot defaults, SQS_VISIBILITY_TIMEOUT={args.visibility_timeout}"
    )
    print(
        f"replica 1 SIGKILLed {result.drain.killed_after:.1f} s after the first publish, "
        f"{result.drain.consumed_at_kill:,} messages having left the queue; /healthz probed "
        f"every {PROBE_EVERY:g} s from 1 s before the first publish until settled"
    )
    print()
    print(f"{'target':<44}{'measured':<46}")
    for label, measured, ok in targets(result):
        print(f"{label:<44}{measured:<46}{verdict(ok)}")

    print()
    print_dynamodb(result)
    sqs_requests = sum(n for op, n in result.total.requests.items() if op.startswith("sqs "))
    print(f"SQS requests (replicas and bench): {sqs_requests:,}, {sqs_requests / alerts:.2f}/alert")

    print()
    print(f"{'queue after the first publish':<32}{'published':>10}{'visible':>9}{'in flight':>11}")
    for seconds, sent, visible, in_flight in _depth_marks(result):
        print(f"{seconds:>30.1f} s{sent:>10,}{visible:>9,}{in_flight:>11,}")
    print(
        f"dead-letter queue {result.dlq}, dead letters in the store {result.dead_letters}, "
        f"Claude calls {result.claude_calls}"
    )
    print("Slack calls: " + ", ".join(f"{m} {n}" for m, n in result.slack_calls.most_common()))
    print(
        "messages show: "
        + ", ".join(f"{i} {n}" for i, n in sorted(result.shown.items()))
        + (
            f"  (settled {result.settled:.1f} s)"
            if result.settled is not None
            else "  (NOT settled)"
        )
    )

    print()
    for url, samples in result.healthz.items():
        slowest = sorted(samples, key=lambda s: -s[1])[:5]
        print(
            f"{_replica(result, url)} /healthz slowest: "
            + ", ".join(
                f"{latency:.3f} s at {stamp - result.first_publish:+.1f} s"
                + ("" if outcome == 200 else f" ({outcome})")
                for stamp, latency, outcome in slowest
            )
        )
    for ended in result.stops:
        print(f"{ended.name} after SIGTERM:")
        for line in ended.lines:
            print(f"  {line[:150]}")
    for problem, count in result.log_problems.most_common(8):
        print(f"  logged {count:>5} x {problem}")


def print_dynamodb(result: Storm) -> None:
    during, after, total = (
        dynamodb(tally.requests) for tally in (result.during, result.after, result.total)
    )
    refused = dynamodb(result.total.refused)
    settling = (result.settled or 0.0) - (result.drain.drained or 0.0)
    print(
        f"DynamoDB requests at moto by operation and the items they touch: storm = first "
        f"publish to drained ({result.drain.drained or 0:.1f} s),"
    )
    print(
        f"settling = to every message showing its count ({settling:.1f} s); refused = a "
        "condition that failed (a write that lost a race, a lease held)"
    )
    print(f"{'':<50}{'storm':>8}{'settling':>10}{'total':>8}{'refused':>9}{'per alert':>11}")

    def row(label: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        requests = _sum(total, keys)
        print(
            f"{label:<50}{_sum(during, keys):>8,}{_sum(after, keys):>10,}{requests:>8,}"
            f"{_sum(refused, keys):>9,}{requests / result.alerts:>11.3f}"
        )

    operations: Counter[str] = Counter()
    for key, requests in total.items():
        operations[key.split(" ", 1)[0]] += requests
    for operation, _ in operations.most_common():
        keys = sorted(
            (k for k in total if k.split(" ", 1)[0] == operation), key=lambda k: -total[k]
        )
        row(operation, keys)
        for key in keys:
            if " " in key:
                row(f"  {key.split(' ', 1)[1][:46]}", [key])
    row("all", total)
    for op, count in result.total.errors.items():
        if op.startswith("dynamodb "):
            print(f"  moto answered 5xx to {count} x {op}")


def _sum(counts: Counter[str], keys: Iterable[str]) -> int:
    return sum(counts[key] for key in keys)


def _replica(result: Storm, url: str) -> str:
    """ "replica N" of a probed URL: the survivors are replicas 2 and 3, in order."""
    return f"replica {list(result.healthz).index(url) + 2}"


def _depth_marks(result: Storm) -> list[tuple[float, int, int, int]]:
    """About a dozen depth reads, evenly in time, with the kill's and the last one."""
    step = max(1.0, (result.drain.depth[-1][0] if result.drain.depth else 0) / 12)
    marks: list[tuple[float, int, int, int]] = []
    for sample in result.drain.depth:
        if not marks or sample[0] - marks[-1][0] >= step or sample is result.drain.depth[-1]:
            marks.append(sample)
    return marks


async def bench(args: argparse.Namespace) -> None:
    server = KeyedMoto()
    with (
        lightened_moto(),
        moto_server(server) as (endpoint, _),
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        aws = Aws(endpoint, boto3_env(endpoint, workdir / "no-aws-config"))
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(aws.env)  # this process's boto3 clients too: moto, fake credentials
        result = await storm(aws, server, args, workdir)
    print_storm(result, args)
    print()
    print(f"{os.cpu_count()} cores, shared with other work")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=20,
        help="seconds; the queue's and SQS_VISIBILITY_TIMEOUT (deploy/template.yaml: 20)",
    )
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
