"""Ingest throughput and memory: parse + fingerprint + record into SQLite.

Feeds 100,000 alerts (by default) in the real formats (CloudWatch alarms through SNS,
CloudWatch Logs subscription data gzip+base64, Alertmanager groups, the brief's custom JSON,
plain text), built from the payload samples in tests/fixtures/payloads with their volatile
parts varied, through the same `Ingestor` the receiver uses, one payload at a time, into a
fresh SQLite file with the production pragmas. Prints alerts per second and peak RSS.

    python bench/ingest.py [--alerts N] [--seed S]
"""

from __future__ import annotations

import argparse
import base64
import copy
import gzip
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from incidents.lifecycle import IncidentService  # noqa: E402
from incidents.sqlite import SqliteStore  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "payloads"
TARGET_ALERTS_PER_SECOND = 2000
TARGET_PEAK_RSS_MB = 150
PROBLEMS = 200

LOG_TEMPLATES = [
    "[ERROR] {ts} {rid} Task timed out after {n}.{n} seconds",
    "[ERROR] {ts} {rid} ConnectionError: connection refused to 10.0.{n}.{n}:5432",
    '{ts} {rid} ERROR OperationalError: FATAL: too many connections for role "app_{n}"',
    "[WARN] {ts} {rid} ThrottlingException: Rate exceeded for table orders-{n}",
    '{{"level":"error","msg":"payment declined","request_id":"{rid}","amount":{n}}}',
    "REPORT RequestId: {rid} Duration: {n}.{n} ms Billed Duration: {n} ms Memory Size: 512 MB",
]


def _load(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


def _cloudwatch_alarm(rng: random.Random, template: dict[str, Any]) -> bytes:
    alarm = json.loads(template["Records"][0]["Sns"]["Message"])
    problem = rng.randrange(PROBLEMS)
    alarm["AlarmName"] = f"service-{problem}-errors-high"
    alarm["AlarmArn"] = (
        f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:service-{problem}-errors-high"
    )
    alarm["NewStateValue"] = rng.choice(["ALARM", "ALARM", "ALARM", "OK"])
    alarm["StateChangeTime"] = (
        f"2026-11-24T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00.000+0000"
    )
    envelope = copy.copy(template["Records"][0]["Sns"])
    envelope["MessageId"] = str(uuid.UUID(int=rng.getrandbits(128)))
    envelope["Message"] = json.dumps(alarm)
    return json.dumps(envelope).encode()


def _logs(rng: random.Random, events: int) -> bytes:
    group = f"/aws/lambda/function-{rng.randrange(PROBLEMS // 10)}"
    log_events = []
    for _ in range(events):
        line = rng.choice(LOG_TEMPLATES).format(
            ts=f"2026-11-24T08:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(999):03d}Z",
            rid=str(uuid.UUID(int=rng.getrandbits(128))),
            n=rng.randrange(1, 9999),
        )
        log_events.append(
            {"id": str(rng.getrandbits(120)), "timestamp": 1764000000000, "message": line}
        )
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": "2026/11/24/[$LATEST]abc",
        "subscriptionFilters": ["errors"],
        "logEvents": log_events,
    }
    encoded = base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()
    return json.dumps({"awslogs": {"data": encoded}}).encode()


def _alertmanager(rng: random.Random, template: dict[str, Any]) -> bytes:
    group = copy.deepcopy(template)
    for entry in group["alerts"]:
        entry["labels"]["instance"] = f"10.1.{rng.randrange(4)}.{rng.randrange(PROBLEMS // 8)}"
        entry["startsAt"] = f"2026-11-24T08:{rng.randrange(60):02d}:00Z"
        entry["status"] = rng.choice(["firing", "firing", "resolved"])
    return json.dumps(group).encode()


def _custom(rng: random.Random) -> bytes:
    return json.dumps(
        {
            "source": f"app-{rng.randrange(10)}",
            "title": f"Payment Processing Failed in region {rng.choice(['eu', 'us', 'ap'])}",
            "message": f"Stripe API returned 500 error\nTransaction ID: txn_{rng.randrange(10**6)}",
            "severity": rng.choice(["HIGH", "CRITICAL", "P3", "warning"]),
            "timestamp": "2026-11-24T08:00:00Z",
        }
    ).encode()


def _text(rng: random.Random) -> bytes:
    return (
        f"disk /dev/xvda{rng.randrange(3)} on host-{rng.randrange(50)} is "
        f"{rng.randrange(90, 100)}% full"
    ).encode()


def payloads(total_alerts: int, seed: int) -> Iterator[tuple[bytes, int]]:
    """(body, alerts in it) until `total_alerts` is reached; generated lazily, so the
    benchmark's own memory stays out of the peak RSS figure."""
    rng = random.Random(seed)
    alarm_template = _load(
        "cloudwatch-alarm-sns/lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
    )
    group_template = _load("prometheus-alertmanager/alertmonitor-docs_v4_firing_3-alerts.json")
    produced = 0
    while produced < total_alerts:
        kind = rng.random()
        if kind < 0.3:
            body, count = _cloudwatch_alarm(rng, alarm_template), 1
        elif kind < 0.6:
            count = min(10, total_alerts - produced)
            body = _logs(rng, count)
        elif kind < 0.8:
            body, count = _alertmanager(rng, group_template), len(group_template["alerts"])
        elif kind < 0.95:
            body, count = _custom(rng), 1
        else:
            body, count = _text(rng), 1
        produced += count
        yield body, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        store = SqliteStore(Path(workdir) / "bench.db")
        ingestor = Ingestor(IncidentService(store), store)
        alerts = payload_count = 0
        started = time.perf_counter()
        for body, _ in payloads(args.alerts, args.seed):
            alerts += len(ingestor.ingest(body, "bench").outcomes)
            payload_count += 1
        elapsed = time.perf_counter() - started
        incidents = len(store.list_incidents(limit=1_000_000))
        store.close()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = alerts / elapsed
    print(f"alerts recorded      {alerts:>10,}")
    print(f"payloads             {payload_count:>10,}")
    print(f"incidents            {incidents:>10,}")
    print(f"elapsed              {elapsed:>10.1f} s")
    print(f"alerts per second    {rate:>10,.0f}   (target >= {TARGET_ALERTS_PER_SECOND:,})")
    print(f"peak RSS             {peak_rss_mb:>10.1f} MB (target <= {TARGET_PEAK_RSS_MB})")


if __name__ == "__main__":
    main()
