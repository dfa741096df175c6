"""Fuzz the HTTP receiver: mutated real payloads posted to a real `incident-bot run`.

Issue 14's target: over 100,000 mutated bodies, no answer of 5xx, no hang (no answer within
10 s), every payload accounted for (the alerts accepted in 202s are the occurrences in the
bot's SQLite file, and the dead letters named in 400s and 202s are the dead letters there),
and memory bounded (the bot's peak RSS, VmHWM).

The bodies are the fixtures under tests/fixtures/payloads, mutated: byte flips, truncations,
duplicated regions, lone UTF-16 surrogates (escaped and as raw UTF-8 bytes), NUL, and
gzip/deflate wrapping (with or without the header, sometimes corrupted), with Content-Type
variations. A fixed seed makes a run repeatable.

    python bench/fuzz_receiver.py --bodies 5000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import sqlite3
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_storm import peak_rss_mb  # noqa: E402
from tests.fakes.bot_process import BotProcess, slack_env  # noqa: E402
from tests.fakes.slack_emulator import SlackEmulator  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "payloads"
HANG_SECONDS = 10.0
INJECTIONS = (b"\\ud83d", b"\\udc00", b"\\u0000", b"\xed\xa0\xbd", b"\x00", b"\xff")
ENCODINGS = (
    None,
    None,
    None,
    "gzip",
    "gzip",
    "deflate",
    "deflate",
    "x-gzip",
    "identity",
    "br",
    "garbage",
)
CONTENT_TYPES = (None, "application/json", "text/plain", "application/octet-stream", "x/;;")


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    hangs: int = 0
    dropped: int = 0
    """Requests whose connection closed with no answer."""
    recorded: int = 0
    """Alerts the 202s say were recorded (not duplicates): each must be an occurrence."""
    named_letters: set[str] = field(default_factory=set)
    unkept_400s: int = 0
    """400s that name no dead letter: a body refused without being kept."""


def mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(0, 4)):
        kind = rng.choice(("flip", "truncate", "duplicate", "inject"))
        at = rng.randrange(len(data) + 1)
        if kind == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            data[at:at] = data[at : at + rng.randint(1, 512)]
        else:
            data[at:at] = rng.choice(INJECTIONS)
    return bytes(data)


def wrap(rng: random.Random, body: bytes) -> tuple[bytes, dict[str, str]]:
    """A Content-Encoding header (or none), the body encoded as it says or not, perhaps cut."""
    encoding = rng.choice(ENCODINGS)
    headers: dict[str, str] = {}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    if rng.random() < 0.7:
        if encoding in ("gzip", "x-gzip"):
            body = gzip.compress(body)
        elif encoding == "deflate":
            body = zlib.compress(body) if rng.random() < 0.5 else zlib.compress(body)[2:-4]
        if encoding in ("gzip", "x-gzip", "deflate") and body and rng.random() < 0.3:
            cut = rng.randrange(len(body))
            body = body[:cut] if rng.random() < 0.5 else body[:cut] + b"\x00" + body[cut + 1 :]
    content_type = rng.choice(CONTENT_TYPES)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return body, headers


def bodies(count: int, seed: int) -> Iterator[tuple[bytes, dict[str, str]]]:
    rng = random.Random(seed)
    fixtures = [path.read_bytes() for path in sorted(FIXTURES.rglob("*.json"))]
    for _ in range(count):
        yield wrap(rng, mutate(rng, rng.choice(fixtures)))


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def post_all(url: str, count: int, seed: int, in_flight: int) -> Tally:
    tally = Tally()
    work = bodies(count, seed)
    timeout = aiohttp.ClientTimeout(total=HANG_SECONDS)

    async def sender(session: aiohttp.ClientSession) -> None:
        for body, headers in work:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    text = await response.text(errors="replace")
                    status = response.status
            except TimeoutError:
                tally.hangs += 1
                continue
            except aiohttp.ClientError:
                tally.dropped += 1
                continue
            tally.statuses[status] += 1
            answer = _json_or_none(text)  # aiohttp's own 500 is plain text
            named = answer.get("dead_letters", []) if isinstance(answer, dict) else []
            tally.named_letters.update(named)
            if status == 202:
                tally.recorded += sum(
                    1 for o in answer.get("outcomes", []) if o["outcome"] != "duplicate"
                )
            elif status == 400 and not named:
                tally.unkept_400s += 1

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(in_flight)))
    return tally


async def bench(count: int, seed: int, in_flight: int) -> int:
    async with SlackEmulator(channels=("C1",)) as slack:
        with tempfile.TemporaryDirectory() as tmp:
            database = Path(tmp) / "bot.db"
            env = slack_env(Path(tmp), slack.api_url, SQLITE_PATH=str(database))
            env["PYTHONPATH"] = str(ROOT)
            bot = BotProcess(env, database)
            try:
                await bot.start()
                started = time.monotonic()
                tally = await post_all(
                    f"http://127.0.0.1:{bot.port}/alerts", count, seed, in_flight
                )
                elapsed = time.monotonic() - started
                async with bot.session.get(f"http://127.0.0.1:{bot.port}/healthz") as health:
                    healthy = health.status == 200
                rss = peak_rss_mb(bot.process.pid)
            finally:
                await bot.stop_if_started()
            with sqlite3.connect(database) as db:
                occurrences = db.execute("SELECT count(*) FROM occurrences").fetchone()[0]
                letters = {row[0] for row in db.execute("SELECT id FROM dead_letters")}
    server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
    accounted = (
        occurrences == tally.recorded and letters == tally.named_letters and not tally.unkept_400s
    )
    print(f"bodies posted: {count} in {elapsed:.1f} s ({count / elapsed:.0f}/s), seed {seed}")
    print("answers by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())))
    print(f"5xx answers: {server_errors}")
    print(f"hangs (no answer within {HANG_SECONDS:.0f} s): {tally.hangs}")
    print(f"connections dropped with no answer: {tally.dropped}")
    print(f"alerts accepted (not duplicates): {tally.recorded}; occurrences stored: {occurrences}")
    print(f"dead letters named in answers: {len(tally.named_letters)}; stored: {len(letters)}")
    print(f"400s naming no dead letter: {tally.unkept_400s}")
    print(f"every payload accounted for: {'yes' if accounted else 'NO'}")
    print(f"/healthz after the run: {'200' if healthy else 'NOT 200'}")
    print(f"peak RSS (VmHWM): {rss:.1f} MB")
    return (
        0
        if accounted and healthy and not server_errors and not tally.hangs and not tally.dropped
        else 1
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bodies", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=8, help="requests in flight")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    sys.exit(asyncio.run(bench(args.bodies, args.seed, args.in_flight)))


if __name__ == "__main__":
    main()
