"""GET each URL every `--every` seconds, from a process of its own, until stdin closes.

A liveness probe as an orchestrator makes it: a new connection each time, one probe in flight
per URL, the next one due `--every` seconds after the last one started (at once if that one
took longer). It runs apart from the bench because the bench's process serves moto, and a
DynamoDB request holding its GIL would show as a slow answer of the bot.

When stdin closes it prints one JSON object: for each URL, its samples as
`[time.time() at the start, seconds to the whole answer, HTTP status or the error's text]`.

    python -m bench.healthz_probe [--every 0.1] [--timeout 5] URL...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import aiohttp

Sample = tuple[float, float, int | str]


async def probe(
    session: aiohttp.ClientSession, url: str, every: float, timeout: float, stop: asyncio.Event
) -> list[Sample]:
    samples: list[Sample] = []
    loop = asyncio.get_running_loop()
    limit = aiohttp.ClientTimeout(total=timeout)
    while not stop.is_set():
        due = loop.time() + every
        stamp, started = time.time(), time.perf_counter()
        outcome: int | str
        try:
            async with session.get(url, timeout=limit) as response:
                await response.read()
                outcome = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        samples.append((stamp, time.perf_counter() - started, outcome))
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, due - loop.time()))
        except TimeoutError:
            pass
    return samples


async def main_async(urls: list[str], every: float, timeout: float) -> dict[str, list[Sample]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stdin = sys.stdin.fileno()

    def on_input() -> None:
        """stdin's end is the bench's word to stop: no port, no signal, no race at exit."""
        if not os.read(stdin, 65536):
            loop.remove_reader(stdin)
            stop.set()

    loop.add_reader(stdin, on_input)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        found = await asyncio.gather(*(probe(session, url, every, timeout, stop) for url in urls))
    return dict(zip(urls, found, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between probes")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a probe fails")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.urls, args.every, args.timeout))))


if __name__ == "__main__":
    main()
