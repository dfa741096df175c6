"""The composition root: settings in, a running process out. Nothing connects at import time.

`run` wires the store, the lifecycle, the receiver and the publisher, serves until SIGTERM or
SIGINT, then stops accepting, finishes the requests in flight, flushes coalesced updates and
closes the store, so an alert that got its 202 is never left half-recorded.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from rich.console import Console

from bot.console import ConsolePublisher
from bot.settings import Settings
from incidents.lifecycle import IncidentService, LifecyclePolicy
from incidents.sqlite_store import SqliteStore
from ingest.pipeline import Ingestor, IngestReport

__all__ = ["Ingestor", "build_ingestor", "run"]
from ingest.webhook import Receiver

logger = logging.getLogger(__name__)


def build_ingestor(settings: Settings) -> Ingestor:
    store = SqliteStore(settings.sqlite_path)
    policy = LifecyclePolicy(
        reopen_window=settings.reopen_window,
        flap_threshold=settings.flap_threshold,
        flap_window=settings.flap_window,
    )
    return Ingestor(IncidentService(store, policy), store)


async def run(settings: Settings, console: Console | None = None) -> None:
    ingestor = build_ingestor(settings)
    if not settings.console_mode:
        logger.warning("Slack tokens are set, but this release posts to the console only")
    publisher = ConsolePublisher(console or Console(), settings.update_interval)

    async def publish(report: IngestReport) -> None:
        for outcome in report.outcomes:
            await publisher.publish(outcome)

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
    receiver = Receiver(
        ingestor,
        executor,
        publish,
        settings.webhook_api_key.get_secret_value() if settings.webhook_api_key else None,
    )
    runner = web.AppRunner(receiver.app(), handle_signals=False, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            logger.info("receiving alerts on http://%s:%s/alerts", host, port)
        logger.info(
            "incidents go to the console; store: SQLite at %s", settings.sqlite_path.resolve()
        )
        await stop.wait()
        logger.info("stopping: finishing requests in flight")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        await publisher.close()
        executor.shutdown(wait=True)
        ingestor.store.close()
        logger.info("stopped")
