"""Slack API calls under an alert storm: how quiet the bot stays.

Runs `incident-bot run` as a real process against the Slack emulator of the tests, which
enforces Slack's published rate limits, and sends 1,000 alerts (by default) from 10 distinct
problems through its HTTP receiver, as fast as the receiver takes them, ids and counters
varied on every alert. When every message shows its incident's final state, prints the Web
API calls by method, the root posts, how long the messages took to catch up, and how many
calls Slack answered 429 (the bot paces itself, so none).

    python bench/slack_storm.py [--alerts N] [--problems P]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.bot_process import BotProcess, slack_env  # noqa: E402
from tests.fakes.slack_emulator import SlackEmulator  # noqa: E402

SERVICES = ["orders", "payments", "search", "checkout", "inventory"]
FAILURES = ["connection refused to 10.0.{a}.{b}:5432", "task timed out after {n} seconds"]


def alert(rng: random.Random, problem: int) -> dict[str, str]:
    service = SERVICES[problem % len(SERVICES)]
    failure = FAILURES[problem // len(SERVICES) % len(FAILURES)].format(
        a=rng.randrange(256), b=rng.randrange(256), n=rng.randrange(10, 900)
    )
    return {
        "source": service,
        "title": f"{service}: {failure.split(' ', 2)[0]} {failure.split(' ', 2)[1]}",
        "message": f"{failure} (request {uuid.UUID(int=rng.getrandbits(128))})",
        "severity": "HIGH",
    }


async def storm(alerts: int, problems: int, seed: int) -> None:
    rng = random.Random(seed)
    async with SlackEmulator(channels=("C1",)) as emulator:
        with tempfile.TemporaryDirectory() as workdir:
            env = slack_env(Path(workdir), emulator.api_url, UPDATE_INTERVAL="10s")
            bot = BotProcess(env, Path(workdir) / "bot.db")
            await bot.start()
            started = time.perf_counter()
            batches = [alert(rng, rng.randrange(problems)) for _ in range(alerts)]
            for start in range(0, alerts, 50):
                await asyncio.gather(*(bot.alert(a) for a in batches[start : start + 50]))
            sent = time.perf_counter() - started

            def settled() -> bool:
                store = bot.store()
                stale = store.unsynced_incidents(datetime.now(UTC))
                store.close()
                return not stale and len(emulator.messages("C1")) > 0

            await emulator.wait_for(settled, timeout=120)
            caught_up = time.perf_counter() - started
            await asyncio.sleep(2)
            await bot.stop()
    calls = Counter(call.method for call in emulator.calls)
    roots = [m for m in emulator.messages("C1") if m.thread_ts is None and m.by_bot]
    print(f"alerts sent             {alerts:>8,}   in {sent:.1f} s")
    print(f"distinct problems       {problems:>8,}")
    print(f"root posts              {len(roots):>8,}")
    for method, count in sorted(calls.items()):
        print(f"  {method:<22}{count:>8,}")
    slack_calls = sum(c for m, c in calls.items() if m.startswith(("chat.", "views.")))
    print(f"message calls in all    {slack_calls:>8,}   ({slack_calls / alerts:.3f} per alert)")
    print(f"messages current after  {caught_up:>8.1f} s")
    print(f"answered 429            {sum(emulator.rate_limited.values()):>8,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(storm(args.alerts, args.problems, args.seed))


if __name__ == "__main__":
    main()
