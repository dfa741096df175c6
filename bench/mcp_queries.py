"""How long the MCP tools `list_incidents` and `get_incident` take over 100,000 incidents.

Seeds a fresh SQLite file as `bench/stats.py` does (100,000 incidents over 60 days, about
three alerts and one analysis each), gives every analysis a full body and every incident a
timeline of two or three events, then calls the tools through the SDK's own `Client`,
connected in memory to the server `incident-bot mcp` builds: the protocol layer, argument and
output validation, redaction and serialization are all in the timed part; only the process
boundary (stdio, HTTP) is not. `list_incidents` is called with each filter in turn (none,
active, a severity, the last 7 days, resolved); `get_incident` on random incidents. Prints
p50, p95 and the slowest call of each against the target.

    python -m bench.mcp_queries [--incidents N] [--calls C] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client  # noqa: E402

from analysis.engine import AnalysisEngine  # noqa: E402
from analysis.models import Analysis, AnalyzerKind, RemediationStep  # noqa: E402
from bench.stats import DAYS, seed  # noqa: E402
from bot.mcp_server.server import build_server  # noqa: E402
from bot.mcp_server.tools import IncidentTools, ToolDeps  # noqa: E402
from incidents.lifecycle import IncidentService  # noqa: E402
from incidents.models import Severity, TimelineEvent, TimelineKind  # noqa: E402
from incidents.offload import Offload  # noqa: E402
from incidents.sqlite import SqliteStore  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402

TARGET_P95_MS = 100
LIST_FILTERS: tuple[dict[str, Any], ...] = (
    {},
    {"status": "active"},
    {"severity": "CRITICAL"},
    {"since": "7d", "limit": 50},
    {"status": "resolved", "severity": "LOW", "limit": 10},
)


def _analysis_body() -> str:
    analysis = Analysis(
        root_cause="The connection pool of service-x is exhausted: password=hunter2 in logs",
        severity=Severity.HIGH,
        severity_justification="Checkout requests fail for some users.",
        impact="About 5% of checkout requests time out.",
        remediation_steps=[
            RemediationStep(action="Raise the pool size", command="aws lambda update-..."),
            RemediationStep(action="Find the leak", command=None),
        ],
        check_first=["The pool metrics", "The last deploy"],
        confidence=0.7,
        analyzer=AnalyzerKind.CLAUDE,
        model="claude-sonnet-4-6",
        prompt_version="v1",
        fingerprint="f",
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return analysis.model_dump_json()


def enrich(path: Path, count: int) -> None:
    """A real analysis body for every analysis, and each incident's timeline events."""
    db = sqlite_utils.Database(path)
    with db.conn:
        db.conn.execute("UPDATE analyses SET body = ?", (_analysis_body(),))
    rows: list[dict[str, Any]] = []
    at = datetime(2026, 11, 1, tzinfo=UTC)
    kinds = (TimelineKind.OPENED, TimelineKind.ACKNOWLEDGED, TimelineKind.RESOLVED)
    for n in range(count):
        incident_id = f"INC-{n:06d}"
        for kind in kinds[: 2 + n % 2]:
            event = TimelineEvent(
                incident_id=incident_id, at=at, actor="U0BENCH", kind=kind, detail=kind.value
            )
            rows.append({"incident_id": incident_id, "at": at.isoformat(),
                         "data": event.model_dump_json()})  # fmt: skip
        if len(rows) >= 30_000:
            with db.conn:
                db["timeline"].insert_all(rows)  # type: ignore[union-attr]
            rows.clear()
    with db.conn:
        db["timeline"].insert_all(rows)  # type: ignore[union-attr]
    db.close()


async def _timed(calls: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    timings = []
    for n in range(calls):
        started = time.perf_counter()
        await call(n)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _line(name: str, timings: list[float]) -> str:
    p95 = statistics.quantiles(timings, n=20)[-1]
    verdict = "OK" if p95 < TARGET_P95_MS else "MISSED"
    return (
        f"{name}: p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(timings):.1f} ms over {len(timings)} calls "
        f"(target p95 < {TARGET_P95_MS} ms: {verdict})"
    )


async def measure(path: Path, count: int, calls: int, rng: random.Random) -> None:
    store = SqliteStore(path)
    engine = AnalysisEngine(store)
    deps = ToolDeps(
        store=store,
        service=IncidentService(store),
        ingestor=Ingestor(IncidentService(store), store),
        engine=engine,
        offload=Offload(),
    )
    server = build_server(IncidentTools(deps), allow_writes=False)
    try:
        async with Client(server) as client:

            async def listing(n: int) -> None:
                result = await client.call_tool("list_incidents", LIST_FILTERS[n % 5])
                assert not result.is_error, result.content

            async def getting(n: int) -> None:
                wanted = f"INC-{rng.randrange(count):06d}"
                result = await client.call_tool("get_incident", {"id": wanted})
                assert not result.is_error, result.content

            await _timed(10, listing)  # warm: the first calls build the SDK's validators
            await _timed(10, getting)
            print(_line("list_incidents", await _timed(calls, listing)))
            print(_line("get_incident", await _timed(calls, getting)))
    finally:
        await engine.close()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "incidents.db"
        started = time.perf_counter()
        incidents, alerts = seed(path, args.incidents, random.Random(args.seed))
        enrich(path, incidents)
        print(
            f"seeded {incidents:,} incidents and {alerts:,} alerts over {DAYS} days, with "
            f"analyses and timelines, in {time.perf_counter() - started:.1f} s "
            f"({path.stat().st_size / 1e6:.0f} MB)"
        )
        asyncio.run(measure(path, incidents, args.calls, random.Random(args.seed)))


if __name__ == "__main__":
    main()
