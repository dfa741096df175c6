"""HTTP alert storm, side by side with Prometheus Alertmanager (issue 13).

A seeded storm (10,000 alerts by default) from 25 problems, each problem a fixed label set
with its own alertname, and every alert varying its ids and counters in its annotations and
its `startsAt` (each alert a new firing, not a re-send that either server may fold away), is
posted over HTTP, 8 requests in flight, in batches of 100 and then one alert per request, to:

- `incident-bot run`, a real child process with its embedded defaults: SQLite in a temporary
  directory, the offline analyzer (no Anthropic key), Slack pointed at the Slack emulator of
  the tests; `POST /alerts`, success = 202.
- `prometheus-alertmanager`, run by hand on 127.0.0.1 with its own temporary storage and
  configuration, clustering off, notifying a webhook receiver in this process; the route has
  `group_by: []`, `group_wait: 1s` (which bounds its first notification) and
  `group_interval: 10s` (the bot's default UPDATE_INTERVAL, so both update at most every 10 s);
  `POST /api/v2/alerts`, success = 200.

The bodies: Alertmanager gets a JSON array of v2 postable alerts. Posted to the bot, such an
array is read by its generic JSON parser, which keys the incident on the title it finds (the
alertname's text), not on the label set, and never sees `endsAt`; so the bot gets the same
alerts as Alertmanager's own webhook (version 4) sends them, a real format it reads as
Prometheus alerts: one group per request (`groupKey` `{}:{}`, the group of `group_by: []`),
entries with the same labels, annotations, `startsAt` and `generatorURL`.

Each server runs alone, fresh, per batch size. Measured, per server: accepted alerts per
second (first request sent to last answer; a 429 or 503 is retried after its Retry-After, as a
real sender would, and counted), the server's CPU time (utime + stime from /proc/<pid>/stat)
over the storm and a `--tail`, its peak RSS (VmHWM), and the time from the first request to
its first notification (the emulator's first root chat.postMessage; Alertmanager's first
webhook). After the bot stops, every accepted alert must be an occurrence in its SQLite file.

    python bench/http_storm.py [--alerts N] [--in-flight K] [--tail S] [--batch B] [--seed X]
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import functools
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.healthz_probe import Sample  # noqa: E402
from tests.fakes.bot_process import BotProcess, slack_env  # noqa: E402
from tests.fakes.slack_emulator import SlackEmulator  # noqa: E402

# Issue 13's targets, as ratios of the bot's figure to Alertmanager's on the same machine.
TARGET_RATE_RATIO = {100: 1.0, 1: 0.5}
TARGET_CPU_RATIO = 3.0
TARGET_FIRST_POST_SECONDS = 1.0
TARGET_HEALTHZ_SECONDS = 0.05
PROBE_EVERY = 0.05  # seconds between liveness probes of the bot
# The issue measured a 30 s tail. 12 s covers what each server defers past the last alert:
# the bot's coalesced Slack update (its default UPDATE_INTERVAL is 10 s) and Alertmanager's
# next group flush (group_interval 10 s here). Past that both only idle, and idle CPU is a
# cost per second, not per alert: a longer tail dilutes the per-alert figures with it.
DEFAULT_TAIL_SECONDS = 12.0
# A 429 or 503 without a usable Retry-After, or a broken connection: a sender waits a moment
# before it tries again, and gives up on a request after so many attempts.
DEFAULT_RETRY_SECONDS = 1.0
MAX_ATTEMPTS = 20
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")
ALERTMANAGER_INSTALL = "apt-get update && apt-get install -y prometheus-alertmanager"
ALERTMANAGER_CONFIG = """\
route:
  receiver: bench
  group_by: []
  group_wait: 1s
  group_interval: 10s
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: {url}
        send_resolved: true
"""
# What the v4 bodies sent to the bot say about the route: the one group of `group_by: []`.
RECEIVER = "incident-bot"
GROUP_KEY = "{}:{}"
EXTERNAL_URL = "http://alertmanager.monitoring:9093"
CLUSTER_LABELS = {"cluster": "prod-eu-1", "prometheus": "monitoring/k8s"}
NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert in a webhook
# The alerts' startsAt: 10 us apart, so that even Alertmanager, the faster, receives each one
# after it started (10,000 of them start within 0.1 s).
STARTS_STEP = timedelta(microseconds=10)
# The bodies carry their alerts' start times, so they are built before the storm for a start
# this far ahead (building 10,000 alerts' bodies takes about 0.4 s on the 2-core machine).
BUILD_LEAD_SECONDS = 3.0


@dataclass(frozen=True)
class Options:
    """The command line, typed."""

    alerts: int
    in_flight: int
    tail: float
    batches: tuple[int, ...]
    seed: int


# -- the storm --------------------------------------------------------------------------------


class Problem(NamedTuple):
    """One problem: a label set (alertname, severity, namespace, job) and its annotations;
    `detail` is formatted with each alert's own counters and ids."""

    alertname: str
    severity: str
    namespace: str
    job: str
    summary: str
    detail: str


PROBLEMS = [
    Problem("KubePodCrashLooping", "warning", "shop", "orders",
            "Pod is crash looping.",
            "Pod shop/orders-{pod} (orders) is in waiting state (reason: CrashLoopBackOff), "
            "{count} restarts, last request {request}."),
    Problem("KubeDeploymentReplicasMismatch", "warning", "shop", "payments",
            "Deployment has not matched the expected number of replicas.",
            "Deployment shop/payments has had {value:.0f}% of its replicas available for {count} "
            "seconds."),
    Problem("KubeContainerWaiting", "warning", "shop", "search",
            "Pod container waiting longer than 1 hour.",
            "pod/search-{pod} in namespace shop on container indexer has been in waiting state "
            "for {count} seconds."),
    Problem("KubeJobFailed", "warning", "billing", "invoicer",
            "Job failed to complete.",
            "Job billing/invoice-run-{count} failed to complete; pod invoicer-{pod} exited with "
            "code 1."),
    Problem("KubeHpaMaxedOut", "warning", "shop", "checkout",
            "HPA is running at max replicas.",
            "HPA shop/checkout has been running at max replicas for {count} seconds at "
            "{value:.1f}% CPU."),
    Problem("KubePersistentVolumeFillingUp", "critical", "data", "inventory-db",
            "PersistentVolume is filling up.",
            "The PersistentVolume claimed by data-inventory-db-0 is only {value:.2f}% free "
            "({count} MiB left)."),
    Problem("KubeNodeNotReady", "warning", "kube-system", "kube-state-metrics",
            "Node is not ready.",
            "ip-10-0-{octet}-{host}.eu-west-1.compute.internal has been unready for {count} "
            "seconds."),
    Problem("NodeFilesystemSpaceFillingUp", "warning", "monitoring", "node-exporter",
            "Filesystem is predicted to run out of space within the next 24 hours.",
            "Filesystem on /dev/nvme1n1 at 10.0.{octet}.{host}:9100 has only {value:.2f}% "
            "available space left and is filling up."),
    Problem("NodeFilesystemAlmostOutOfSpace", "critical", "monitoring", "node-exporter-root",
            "Filesystem has less than 3% space left.",
            "Filesystem on /dev/nvme0n1p1 at 10.0.{octet}.{host}:9100 has only {value:.2f}% "
            "available space left."),
    Problem("NodeHighNumberConntrackEntriesUsed", "warning", "monitoring", "node-exporter-nat",
            "Number of conntrack are getting close to the limit.",
            "{value:.1f}% of conntrack entries are used ({count} entries)."),
    Problem("NodeNetworkReceiveErrs", "warning", "monitoring", "node-exporter-net",
            "Network interface is reporting many receive errors.",
            "10.0.{octet}.{host} interface eth0 has encountered {count} receive errors in the "
            "last two minutes."),
    Problem("NodeClockNotSynchronising", "warning", "monitoring", "node-exporter-ntp",
            "Clock not synchronising.",
            "Clock at 10.0.{octet}.{host}:9100 is not synchronising; offset {value:.3f} s after "
            "{count} polls."),
    Problem("NodeMemoryHighUtilization", "warning", "monitoring", "node-exporter-mem",
            "Host is running out of memory.",
            "Memory is filling up at 10.0.{octet}.{host}:9100, {value:.1f}% used ({count} MiB "
            "free)."),
    Problem("TargetDown", "warning", "shop", "recommendations",
            "One or more targets are unreachable.",
            "{value:.0f}% of the recommendations/recommendations targets in shop are down; last "
            "scrape error on request {request}."),
    Problem("PrometheusRuleFailures", "critical", "monitoring", "prometheus-k8s",
            "Prometheus is failing rule evaluations.",
            "Prometheus monitoring/prometheus-k8s-0 has failed to evaluate {count} rules in the "
            "last 5m."),
    Problem("AlertmanagerFailedToSendAlerts", "warning", "monitoring", "alertmanager-main",
            "An Alertmanager instance failed to send notifications.",
            "Alertmanager monitoring/alertmanager-main-1 failed to send {value:.1f}% of "
            "notifications to pagerduty ({count} attempts)."),
    Problem("CPUThrottlingHigh", "warning", "shop", "cart",
            "Processes experience elevated CPU throttling.",
            "{value:.1f}% throttling of CPU in namespace shop for container cart in pod "
            "cart-{pod}."),
    Problem("KubeAPIErrorBudgetBurn", "critical", "kube-system", "apiserver",
            "The API server is burning too much error budget.",
            "The API server is burning too much error budget: {value:.2f}x over 1h, {count} "
            "failed requests, e.g. {request}."),
    Problem("KubeletTooManyPods", "info", "kube-system", "kubelet",
            "Kubelet is running at capacity.",
            "Kubelet 'ip-10-0-{octet}-{host}' is running at {value:.1f}% of its Pod capacity."),
    Problem("KubeStatefulSetReplicasMismatch", "warning", "data", "kafka",
            "StatefulSet has not matched the expected number of replicas.",
            "StatefulSet data/kafka has not matched the expected number of replicas for {count} "
            "seconds ({value:.0f}% ready)."),
    Problem("KubeQuotaAlmostFull", "info", "analytics", "kube-state-metrics-quota",
            "Namespace quota is going to be full.",
            "Namespace analytics is using {value:.1f}% of its requests.memory quota ({count} "
            "MiB)."),
    Problem("etcdHighNumberOfFailedGRPCRequests", "critical", "kube-system", "etcd",
            "etcd cluster has high number of failed grpc requests.",
            "etcd cluster etcd: {value:.1f}% of requests for Range failed on etcd instance "
            "10.0.{octet}.{host}:2379 ({count} requests)."),
    Problem("APIHighErrorRate", "critical", "shop", "payments-api",
            "More than 5% of requests answer 5xx.",
            "{value:.1f}% of POST /v1/charges answered 5xx in the last 5m ({count} requests); "
            "example request {request}."),
    Problem("APIHighLatency", "warning", "shop", "search-api",
            "p99 latency is above 1 s.",
            "p99 of GET /v2/search is {value:.2f} s over 5m ({count} requests); slowest trace "
            "{request}."),
    Problem("PostgresReplicationLag", "critical", "data", "postgres-exporter",
            "Postgres replica is lagging.",
            "Replica orders-db-1 is {value:.1f} s behind its primary; {count} WAL segments "
            "pending, last xid {request}."),
]  # fmt: skip


@dataclass(frozen=True)
class Fired:
    """One alert of the storm: its problem and its own annotations, with no time yet (the
    times are set when a run starts, so that they are current for Alertmanager)."""

    problem: int
    annotations: dict[str, str]


def labels_of(index: int) -> dict[str, str]:
    problem = PROBLEMS[index]
    return {
        "alertname": problem.alertname,
        "severity": problem.severity,
        "namespace": problem.namespace,
        "job": problem.job,
        "service": problem.job,
        "instance": f"10.0.{3 + index // 10}.{10 + index}:9090",
        **CLUSTER_LABELS,
    }


def generator_url(index: int) -> str:
    """The Prometheus graph of the rule's alerts, as Prometheus links them."""
    expr = quote(f'ALERTS{{alertname="{PROBLEMS[index].alertname}"}}', safe="")
    return f"http://prometheus-k8s-0:9090/graph?g0.expr={expr}&g0.tab=1"


def storm(alerts: int, seed: int) -> list[Fired]:
    """`alerts` alerts, each from a problem drawn uniformly, every counter and id varied."""
    rng = random.Random(seed)
    fired = []
    for _ in range(alerts):
        index = rng.randrange(len(PROBLEMS))
        problem = PROBLEMS[index]
        detail = problem.detail.format(
            pod=f"{rng.getrandbits(40):010x}"[:10] + f"-{rng.getrandbits(20):05x}",
            count=rng.randrange(2, 50_000),
            value=rng.uniform(0.5, 99.5),
            request=f"{rng.getrandbits(128):032x}",
            octet=rng.randrange(256),
            host=rng.randrange(1, 255),
        )
        fired.append(
            Fired(
                index,
                {
                    "summary": problem.summary,
                    "description": detail,
                    "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/"
                    + problem.alertname.lower(),
                },
            )
        )
    return fired


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def postable_alerts(fired: Sequence[Fired], start: datetime) -> list[dict[str, Any]]:
    """The storm as Alertmanager v2 postable alerts. The first alert starts firing at `start`,
    when the first request goes out, and each next one STARTS_STEP later, so each is a new
    firing and none is older than Alertmanager's group_wait when it arrives (an older one is
    flushed at once); all are valid for 5 minutes, the endsAt a Prometheus would give them."""
    ends = _rfc3339(start + timedelta(minutes=5))
    return [
        {
            "labels": labels_of(alert.problem),
            "annotations": alert.annotations,
            "startsAt": _rfc3339(start + n * STARTS_STEP),
            "endsAt": ends,
            "generatorURL": generator_url(alert.problem),
        }
        for n, alert in enumerate(fired)
    ]


def alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as its webhook gives it."""
    return _fingerprint(tuple(sorted(labels.items())))


@functools.cache
def _fingerprint(labels: tuple[tuple[str, str], ...]) -> str:
    """FNV-1a 64 over the sorted names and values, each followed by 0xff; cached, as a
    problem's label set never changes and the bytewise loop would cost 10,000 times."""
    digest = 0xCBF29CE484222325
    for name, value in labels:
        for byte in name.encode() + b"\xff" + value.encode() + b"\xff":
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def _common(maps: Sequence[dict[str, str]]) -> dict[str, str]:
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


def webhook_group(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Postable alerts as Alertmanager's webhook (version 4) notifies them: one group."""
    return {
        "receiver": RECEIVER,
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": alert["labels"],
                "annotations": alert["annotations"],
                "startsAt": alert["startsAt"],
                "endsAt": NEVER,
                "generatorURL": alert["generatorURL"],
                "fingerprint": alertmanager_fingerprint(alert["labels"]),
            }
            for alert in batch
        ],
        "groupLabels": {},
        "commonLabels": _common([a["labels"] for a in batch]),
        "commonAnnotations": _common([a["annotations"] for a in batch]),
        "externalURL": EXTERNAL_URL,
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
    }


def bodies(
    fired: Sequence[Fired], batch: int, start: datetime, *, webhook: bool
) -> list[tuple[int, bytes]]:
    """(alerts in it, body) of each request: a v2 array, or a v4 group for the bot."""
    alerts = postable_alerts(fired, start)
    found = []
    for first in range(0, len(alerts), batch):
        chunk = alerts[first : first + batch]
        document: Any = webhook_group(chunk) if webhook else chunk
        found.append((len(chunk), json.dumps(document).encode()))
    return found


# -- sending ------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """How a server took the storm: what it accepted, and every other answer it gave."""

    success: int
    """The status that accepts: 202 from the bot, 200 from Alertmanager."""
    accepted: int = 0
    refused: int = 0
    """Alerts in requests refused, or still not accepted after MAX_ATTEMPTS."""
    retries: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    """Answers other than success, by status and reason, and broken connections."""
    started: float = 0.0
    """`time.monotonic()` as the first request went out."""
    finished: float = 0.0
    """`time.monotonic()` at the last answer."""

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else float("nan")


async def deliver(
    url: str, requests: Sequence[tuple[int, bytes]], in_flight: int, success: int
) -> Delivery:
    """Post every body, `in_flight` at a time, as a sender with a queue would: a 429 or 503 is
    tried again after its Retry-After, a broken connection after a second, up to MAX_ATTEMPTS
    in all; any other answer than success is a refusal, counted and dropped."""
    delivery = Delivery(success)
    pending = iter(requests)
    headers = {"Content-Type": "application/json"}

    async def attempt(session: aiohttp.ClientSession, body: bytes) -> tuple[int | None, float]:
        """(status, seconds to wait before a retry); the status is None if the connection
        broke, and then the answer counted says how."""
        try:
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != success:
                    delivery.answers[f"{response.status} {_reason(answer)}"] += 1
                return response.status, _retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.answers[f"no answer: {type(exc).__name__} {exc}"[:120]] += 1
            return None, DEFAULT_RETRY_SECONDS

    async def worker(session: aiohttp.ClientSession) -> None:
        for count, body in pending:
            for tries in range(1, MAX_ATTEMPTS + 1):
                status, delay = await attempt(session, body)
                if status == success:
                    delivery.accepted += count
                    break
                if status not in (429, 503, None) or tries == MAX_ATTEMPTS:
                    delivery.refused += count
                    break
                delivery.retries += 1
                await asyncio.sleep(delay)
        delivery.finished = time.monotonic()

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        delivery.started = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
    return delivery


def _retry_after(value: str | None) -> float:
    """Retry-After in seconds: delta-seconds, or an HTTP date."""
    if value is None:
        return DEFAULT_RETRY_SECONDS
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_SECONDS
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _reason(answer: bytes) -> str:
    """The bot's `{"error": ...}`, or the first line of any other body, bounded."""
    text = answer.decode(errors="replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        text = document["error"]
    return (text.splitlines() or [""])[0][:100]


# -- measuring a server ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far, from /proc (its children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


@dataclass
class Load:
    """What one server did with the storm, from /proc and from the client's side."""

    delivery: Delivery
    cpu_storm: float
    cpu_tail: float
    client_cpu: float
    """CPU time of this process (the client, and the emulator or the webhook receiver) during
    the storm: on a 2-core machine it competes with the server."""
    peak_rss_mb: float

    @property
    def cpu_per_alert_ms(self) -> float:
        alerts = self.delivery.accepted
        return 1000 * (self.cpu_storm + self.cpu_tail) / alerts if alerts else float("nan")


async def load(
    pid: int,
    url: str,
    build: Callable[[datetime], list[tuple[int, bytes]]],
    success: int,
    args: Options,
) -> Load:
    """Build the requests for a start BUILD_LEAD_SECONDS ahead, send them to the server `pid`
    from that moment, then wait out the tail, reading its CPU around both."""
    start = datetime.now(UTC) + timedelta(seconds=BUILD_LEAD_SECONDS)
    requests = build(start)
    lead = (start - datetime.now(UTC)).total_seconds()
    if lead < 0:
        raise RuntimeError(f"building the requests overran BUILD_LEAD_SECONDS by {-lead:.1f} s")
    await asyncio.sleep(lead)
    cpu_before, client_before = cpu_seconds(pid), time.process_time()
    delivery = await deliver(url, requests, args.in_flight, success)
    cpu_after, client_cpu = cpu_seconds(pid), time.process_time() - client_before
    await asyncio.sleep(args.tail)
    return Load(
        delivery=delivery,
        cpu_storm=cpu_after - cpu_before,
        cpu_tail=cpu_seconds(pid) - cpu_after,
        client_cpu=client_cpu,
        peak_rss_mb=peak_rss_mb(pid),
    )


@dataclass
class Run:
    """One server under one storm."""

    server: str
    load: Load
    first_post: float | None
    """Seconds from the first request to the first notification; None if none came."""
    notifications: int
    """Slack chat.postMessage and chat.update calls, or webhook notifications."""
    problems: int
    """Incidents in the bot's store, or alerts Alertmanager holds."""
    durable: int | None = None
    """Occurrences in the bot's SQLite file after it stopped."""
    log_problems: Counter[str] = field(default_factory=Counter)
    healthz: list[Sample] = field(default_factory=list)
    """The bot's `GET /healthz` answers, probed every PROBE_EVERY s over the storm and tail."""


async def run_bot(fired: Sequence[Fired], batch: int, args: Options) -> Run:
    """A fresh bot with its embedded defaults, on a fresh Slack emulator; its SQLite file is
    counted once it has stopped, so what it flushed on SIGTERM counts too."""
    async with SlackEmulator(channels=("C1",)) as slack:
        with tempfile.TemporaryDirectory() as tmp:
            database = Path(tmp) / "bot.db"
            env = slack_env(Path(tmp), slack.api_url, SQLITE_PATH=str(database))
            env["PYTHONPATH"] = str(ROOT)
            for tuned in ("UPDATE_INTERVAL", "SLACK_RESYNC_INTERVAL"):  # the tests' fast pace
                del env[tuned]
            bot = BotProcess(env, database)
            try:
                await bot.start()
                url = f"http://127.0.0.1:{bot.port}/alerts"
                seen = len(bot.lines)
                probe = await _probe(f"http://127.0.0.1:{bot.port}/healthz")
                try:
                    measured = await load(
                        bot.process.pid,
                        url,
                        lambda start: bodies(fired, batch, start, webhook=True),
                        202,
                        args,
                    )
                finally:
                    healthz = await _probed(probe)
            finally:
                await bot.stop_if_started()
            db = sqlite3.connect(database)
            try:
                durable = db.execute("SELECT count(*) FROM occurrences").fetchone()[0]
                incidents = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
            finally:
                db.close()
    posts = [
        call.time
        for call in slack.calls
        if call.method == "chat.postMessage" and call.ok and not call.params.get("thread_ts")
    ]
    logged: Counter[str] = Counter()
    for line in bot.lines[seen:]:
        for level in (" ERROR ", " WARNING "):
            if level in line:
                logged[f"{level.strip()} {line.split(level, 1)[1].strip()[:70]}"] += 1
    return Run(
        server="incident-bot",
        load=measured,
        first_post=min(posts) - measured.delivery.started if posts else None,
        notifications=sum(
            1 for c in slack.calls if c.method in ("chat.postMessage", "chat.update") and c.ok
        ),
        problems=incidents,
        durable=durable,
        log_problems=logged,
        healthz=healthz,
    )


async def _probe(url: str) -> asyncio.subprocess.Process:
    """Liveness probes from a process of its own, as an orchestrator sends them: this process
    is busy sending the storm, and its own delays would read as the bot's."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.healthz_probe", "--every", str(PROBE_EVERY), url,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _probed(probe: asyncio.subprocess.Process) -> list[Sample]:
    assert probe.stdin is not None and probe.stdout is not None
    probe.stdin.close()
    answers: dict[str, list[Sample]] = json.loads(await probe.stdout.read())
    await probe.wait()
    return [sample for samples in answers.values() for sample in samples]


class WebhookSink:
    """Alertmanager's webhook receiver: when each notification arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        await request.read()
        return web.Response()

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}/"

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def find_alertmanager() -> str | None:
    """The binary on PATH: Debian's package names it prometheus-alertmanager, upstream's
    release tarball alertmanager."""
    return next((path for name in ALERTMANAGER_NAMES if (path := shutil.which(name))), None)


def alertmanager_version(binary: str) -> str:
    """`alertmanager, version 0.25.0 (branch: ...)` -> `0.25.0`."""
    printed = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    words = (printed.stdout + printed.stderr).split()
    return words[words.index("version") + 1] if "version" in words else "?"


def _free_port() -> int:
    """A port free when probed, for Alertmanager to bind: it takes no port 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def run_alertmanager(binary: str, fired: Sequence[Fired], batch: int, args: Options) -> Run:
    """Alertmanager by hand: a free port, its own storage and configuration, no cluster."""
    sink = WebhookSink()
    async with sink as webhook_url:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "alertmanager.yml"
            config.write_text(ALERTMANAGER_CONFIG.format(url=webhook_url))
            address = f"127.0.0.1:{_free_port()}"
            log_path = Path(tmp) / "alertmanager.log"
            with log_path.open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={tmp}/data",
                    f"--web.listen-address={address}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log,
                )
            try:
                async with aiohttp.ClientSession() as session:
                    await _ready(session, f"http://{address}/-/ready", process)
                    url = f"http://{address}/api/v2/alerts"
                    measured = await load(
                        process.pid,
                        url,
                        lambda start: bodies(fired, batch, start, webhook=False),
                        200,
                        args,
                    )
                    async with session.get(url) as response:
                        held = len(await response.json())
            finally:
                await _terminate(process)
            logged = Counter(log_path.read_text(errors="replace").splitlines())
    return Run(
        server="alertmanager",
        load=measured,
        first_post=sink.arrivals[0] - measured.delivery.started if sink.arrivals else None,
        notifications=len(sink.arrivals),
        problems=held,
        log_problems=logged,
    )


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, and SIGKILL if it has not exited 10 s later: no Alertmanager outlives the run."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _ready(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process
) -> None:
    """Wait for /-/ready: the storm must not start while Alertmanager is still loading."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"alertmanager exited with {process.returncode} at start")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("alertmanager was not ready within 30 s")


# -- report -------------------------------------------------------------------------------------


def _row(label: str, bot: str, am: str = "", ratio: str = "", target: str = "") -> None:
    print(f"{label:<32}{bot:>14}{am:>14}{ratio:>9}  {target}".rstrip())


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISS"


def report(batch: int, bot: Run, am: Run | None, args: Options) -> None:
    """One table per batch size: both servers, bot/AM ratio, the target and its verdict."""

    def cells(value: Callable[[Run], float | None], spec: str) -> tuple[str, str]:
        def cell(run: Run | None) -> str:
            got = None if run is None else value(run)
            return "-" if got is None else format(got, spec)

        return cell(bot), cell(am)

    def ratio(value: Callable[[Run], float]) -> float | None:
        return value(bot) / value(am) if am is not None and value(am) else None

    def judged(found: float | None, goal: str, ok: Callable[[float], bool]) -> tuple[str, str]:
        if found is None:
            return "n/a", goal
        return f"{found:.2f}x", f"{goal}  {_verdict(ok(found))}"

    def rate(run: Run) -> float:
        return run.load.delivery.rate

    def cpu(run: Run) -> float:
        return run.load.cpu_per_alert_ms

    def rss(run: Run) -> float:
        return run.load.peak_rss_mb

    requests = -(-args.alerts // batch)
    print()
    print(f"batch of {batch} alert{'s' if batch > 1 else ''} per request ({requests:,} requests)")
    _row("", "incident-bot", "alertmanager", "bot/AM", "target")
    goal = TARGET_RATE_RATIO.get(batch)
    if goal is None:
        _row("accepted alerts/s", *cells(rate, ",.0f"), judged(ratio(rate), "", bool)[0])
    else:
        _row(
            "accepted alerts/s",
            *cells(rate, ",.0f"),
            *judged(ratio(rate), f">= {goal:.1f}x", lambda r: r >= goal),
        )
    _row("  alerts accepted", *cells(lambda r: r.load.delivery.accepted, ","))
    _row("  storm, s", *cells(lambda r: r.load.delivery.seconds, ".2f"))
    _row("  retries (429, 503, no answer)", *cells(lambda r: r.load.delivery.retries, ","))
    _row("  alerts refused", *cells(lambda r: r.load.delivery.refused, ","))
    _row("server CPU in storm, s", *cells(lambda r: r.load.cpu_storm, ".2f"))
    _row(f"server CPU in {args.tail:g} s tail, s", *cells(lambda r: r.load.cpu_tail, ".2f"))
    _row(
        "CPU per alert, ms",
        *cells(cpu, ".3f"),
        *judged(ratio(cpu), f"<= {TARGET_CPU_RATIO:.1f}x", lambda r: r <= TARGET_CPU_RATIO),
    )
    _row("peak RSS (VmHWM), MB", *cells(rss, ".1f"), judged(ratio(rss), "", bool)[0])
    first = bot.first_post
    first_ok = first is not None and first <= TARGET_FIRST_POST_SECONDS
    _row(
        "first post after 1st alert, s",
        *cells(lambda r: r.first_post, ".3f"),
        "",
        f"bot <= {TARGET_FIRST_POST_SECONDS:.1f} s  {_verdict(first_ok)}",
    )
    _row(
        "notifications", *cells(lambda r: r.notifications, ","), "", "Slack posts+updates; webhooks"
    )
    _row(
        "problems held",
        *cells(lambda r: r.problems, ","),
        "",
        f"incidents; alerts (of {len(PROBLEMS)})",
    )
    seconds = sorted(took for _, took, status in bot.healthz if status == 200)
    failed = sum(1 for _, _, status in bot.healthz if status != 200)
    if seconds:
        worst = seconds[-1]
        p99 = seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))]
        _row(
            "/healthz under load, ms",
            f"max {worst * 1000:.0f}",
            f"p99 {p99 * 1000:.0f}",
            f"{failed} failed",
            f"max <= {TARGET_HEALTHZ_SECONDS * 1000:.0f} ms  "
            f"{_verdict(worst <= TARGET_HEALTHZ_SECONDS and not failed)}",
        )
    durable_ok = bot.durable == bot.load.delivery.accepted
    _row(
        "occurrences in bot's SQLite",
        f"{bot.durable:,}",
        "",
        "",
        f"= accepted  {_verdict(durable_ok)}",
    )
    _row("client CPU (this process), s", *cells(lambda r: r.load.client_cpu, ".2f"))
    for run in (bot, am):
        if run is None:
            continue
        delivery = run.load.delivery
        print(f"  {run.server} answers other than {delivery.success}:", end="")
        print("" if delivery.answers else " none")
        for answer, count in delivery.answers.most_common():
            print(f"    {count:,} x {answer}")
        for line, count in run.log_problems.most_common(5):
            print(f"  {run.server} logged {count:,} x {line[:110]}")


async def bench(args: Options) -> None:
    binary = find_alertmanager()
    fired = storm(args.alerts, args.seed)
    print(
        f"HTTP storm: {args.alerts:,} alerts from {len(PROBLEMS)} problems (seed {args.seed}), "
        f"{args.in_flight} requests in flight, {args.tail:g} s tail; "
        f"{os.cpu_count()} cores, shared with other work"
    )
    print("incident-bot  POST /alerts: Alertmanager webhook v4 groups; embedded defaults (SQLite")
    print("              in a temp dir, offline analyzer), Slack emulator")
    if binary is None:
        print("alertmanager  not found, so the bot side only. To compare, install it:")
        print(f"              {ALERTMANAGER_INSTALL}")
    else:
        print(
            f"alertmanager  {alertmanager_version(binary)} ({binary}) POST /api/v2/alerts: "
            "v2 arrays;"
        )
        print("              group_by [], group_wait 1s, group_interval 10s, cluster off")
    results = []
    for batch in args.batches:
        am = None
        if binary is not None:
            am = await run_alertmanager(binary, fired, batch, args)
            _progress(batch, am)
        bot = await run_bot(fired, batch, args)
        _progress(batch, bot)
        results.append((batch, bot, am))
    for batch, bot, am in results:
        report(batch, bot, am, args)


def _progress(batch: int, run: Run) -> None:
    delivery = run.load.delivery
    print(
        f"  batch {batch}: {run.server} took {delivery.accepted:,} alerts "
        f"in {delivery.seconds:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=8, help="requests in flight")
    parser.add_argument(
        "--tail",
        type=float,
        default=DEFAULT_TAIL_SECONDS,
        help="seconds after the storm whose server CPU counts too",
    )
    parser.add_argument("--batch", type=int, help="run this batch size only (default: both)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    options = Options(
        alerts=args.alerts,
        in_flight=args.in_flight,
        tail=args.tail,
        batches=(args.batch,) if args.batch else (100, 1),
        seed=args.seed,
    )
    asyncio.run(bench(options))


if __name__ == "__main__":
    main()
