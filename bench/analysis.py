"""Analysis cost under an alert storm: how many Claude calls 10,000 alerts really cost.

Sends 10,000 alerts (by default) from 25 distinct problems, with their ids, counters and
addresses varied on every alert, through the real pipeline (parse, fingerprint, record) and
the analysis engine exactly as `incident-bot run` drives it: every new or reopened incident is
analysed in a background task while the storm goes on. Problems also resolve now and then and
come back later as new incidents, which is what the analysis cache is for. Claude is the
local Messages API server of the tests, reached through the real anthropic SDK over a socket.

Prints Claude calls (target: at most 25, one per distinct problem), the cache hit rate and
the cost per alert.

    python bench/analysis.py [--alerts N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anthropic import AsyncAnthropic  # noqa: E402

from analysis.claude import ClaudeAnalyzer  # noqa: E402
from analysis.engine import AnalysisEngine, EngineConfig  # noqa: E402
from incidents.lifecycle import IncidentService, OutcomeKind  # noqa: E402
from incidents.sqlite import SqliteStore  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from tests.fakes.anthropic_server import FakeAnthropic  # noqa: E402

PROBLEMS = 25
TARGET_CALLS = PROBLEMS
SECONDS_BETWEEN_ALERTS = 4
RESOLVE_SHARE = 0.02
ANSWER = {
    "root_cause": "Benchmark analysis.",
    "severity": "HIGH",
    "severity_justification": "Benchmark.",
    "impact": "Benchmark.",
    "remediation_steps": [{"action": "Nothing to do: this is a benchmark."}],
    "confidence": 0.5,
}
SERVICES = ["orders", "payments", "search", "checkout", "inventory"]
FAILURES = [
    "ConnectionError: connection refused to {ip}:5432 (request {rid})",
    "Task timed out after {n}.{n} seconds (RequestId: {rid})",
    'OperationalError: FATAL: too many connections for role "svc_{service}" pid={n}',
    "ThrottlingException: Rate exceeded for table {service}-{n} request {rid}",
    "No space left on device writing /var/lib/{service}/{rid}.tmp",
]


class Clock:
    """Simulated time: the storm spans hours in a few seconds of real time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def alert_body(rng: random.Random, problem: int, resolved: bool) -> bytes:
    """One of 25 problems (5 services x 5 failures) in the brief's custom format, with every
    volatile part fresh, as a real storm would send it."""
    service = SERVICES[problem % len(SERVICES)]
    failure = FAILURES[problem // len(SERVICES)]
    message = failure.format(
        ip=f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
        rid=str(uuid.UUID(int=rng.getrandbits(128))),
        n=rng.randrange(1, 99999),
        service=service,
    )
    return json.dumps(
        {
            "source": service,
            "title": f"{service}: {message.split(':', 1)[0]}",
            "message": message,
            "severity": rng.choice(["HIGH", "CRITICAL", "MEDIUM"]),
            "status": "resolved" if resolved else "firing",
        }
    ).encode()


async def storm(alerts: int, seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    async with FakeAnthropic(default_tool_input=ANSWER) as fake:
        with tempfile.TemporaryDirectory() as workdir:
            store = SqliteStore(Path(workdir) / "bench.db")
            ingestor = Ingestor(IncidentService(store, clock=clock), store, clock=clock)
            client = AsyncAnthropic(api_key="bench", base_url=fake.url, max_retries=2)
            engine = AnalysisEngine(
                store,
                EngineConfig(cache_ttl=timedelta(hours=24)),
                claude=ClaudeAnalyzer(client),
                clock=clock,
            )
            tasks: set[asyncio.Task[object]] = set()
            incidents = 0
            started = time.perf_counter()
            for _ in range(alerts):
                clock.now += timedelta(seconds=SECONDS_BETWEEN_ALERTS)
                body = alert_body(rng, rng.randrange(PROBLEMS), rng.random() < RESOLVE_SHARE)
                for outcome in ingestor.ingest(body, "bench").outcomes:
                    if outcome.incident is not None and outcome.kind in (
                        OutcomeKind.OPENED,
                        OutcomeKind.REOPENED,
                    ):
                        incidents += outcome.kind is OutcomeKind.OPENED
                        task = asyncio.create_task(engine.analyze(outcome.incident, outcome.alert))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                await asyncio.sleep(0)
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - started
            await engine.close()
            totals = store.cost_totals(since=datetime(2026, 1, 1, tzinfo=UTC))
            store.close()
    cost = sum(t.cost_usd for t in totals)
    stats = engine.stats
    print(f"alerts                {alerts:>10,}")
    print(f"distinct problems     {PROBLEMS:>10,}")
    print(f"incidents opened      {incidents:>10,}")
    print(f"analyses requested    {stats.requests:>10,}")
    print(f"Claude calls          {len(fake.requests):>10,}   (target <= {TARGET_CALLS})")
    print(f"cache hit rate        {stats.hit_rate:>10.1%}")
    print(f"total cost            ${cost:>9.4f}")
    print(f"cost per alert        ${cost / alerts:>9.6f}")
    print(f"simulated span        {clock.now - datetime(2026, 11, 24, 8, 0, tzinfo=UTC)}")
    print(f"elapsed               {elapsed:>10.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    asyncio.run(storm(args.alerts, args.seed))


if __name__ == "__main__":
    main()
