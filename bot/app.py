"""The composition root: settings in, a running process out. Nothing connects at import time.

`run` builds the parts (`bot.components`) in the order they depend on each other, serves until
SIGTERM or SIGINT, then stops them in the reverse order: each part registers its own stop on
one `AsyncExitStack` as it is built, so that shutdown order follows construction order and a
part that failed to start never leaves the ones before it running. In that order a stop:
stops taking alerts (the SQS consumer hands back what it holds; HTTP requests in flight get
`REQUESTS_GRACE`), writes the alerts in hand, finishes message updates, analyses and
notifications within `STOP_WITHIN` of the signal, then closes the clients, the threads and the
store, so an alert that got its 202 is never left half-recorded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from rich.console import Console

from analysis.engine import AnalysisEngine
from analysis.runbooks import Runbooks, load_runbooks
from bot.components import (
    aws_clients,
    build_engine,
    build_ingestor,
    build_mcp_tools,
    build_postmortems,
    build_scheduled,
    build_store,
    connect_slack,
    describe_store,
    slack_client,
    slack_connection,
    sqs_consumer,
)
from bot.console import ConsolePublisher
from bot.graphs import MetricGraphs
from bot.outcomes import OutcomeWork
from bot.reactions import Reactions
from bot.settings import Settings
from incidents.leases import Leases
from incidents.offload import Offload
from incidents.store import Store
from ingest.group_commit import GroupCommitter
from ingest.pipeline import Ingestor
from ingest.webhook import Receiver
from notify.dispatch import Notifier, no_permalink

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from analysis.aws_clients import ClientFactory
    from bot.mcp_server.http import McpEndpoint
    from bot.postmortems import PostMortems
    from bot.slack_publisher import SlackPublisher

__all__ = ["run"]

STORE_THREADS = 8
STOP_WITHIN = 8.0
"""Seconds from SIGTERM to the end of what a stop waits for (analyses, message updates):
inside the 10 s an orchestrator grants, with room to close the connections after."""
REQUESTS_GRACE = 3.0
"""Seconds a stop waits for HTTP requests in flight to be answered."""

logger = logging.getLogger(__name__)


class Stop:
    """The signal to stop, and the deadline it starts: every wait of the stop ends by then."""

    def __init__(self, within: float) -> None:
        self.event = asyncio.Event()
        self._within = within
        self._deadline = math.inf

    def begin(self) -> None:
        if self._deadline == math.inf:
            self._deadline = asyncio.get_running_loop().time() + self._within
        self.event.set()

    async def bounded(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Wait for `work` until the deadline; what is left then is cancelled and said."""
        remaining = self._deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(work, max(0.0, remaining))
        except TimeoutError:
            logger.warning("stopping: %s still running at the stop deadline, cancelled", what)


@dataclass
class _Core:
    """The parts every other part is built on."""

    store: Store
    ingestor: Ingestor
    executor: ThreadPoolExecutor
    parse_executor: ThreadPoolExecutor
    leases: Leases
    runbooks: Runbooks
    clients: ClientFactory
    engine: AnalysisEngine


@dataclass
class _Publishing:
    """Where incidents are shown and told: the publisher, the notifier and its schedule."""

    publisher: ConsolePublisher | SlackPublisher
    slack: SlackPublisher | None
    notifier: Notifier
    scheduler: AsyncIOScheduler
    postmortems: PostMortems


async def run(settings: Settings, console: Console | None = None) -> None:
    stop = Stop(STOP_WITHIN)
    async with AsyncExitStack() as stack:
        # Begun before anything in the stack unwinds, whether the stop was asked for or a part
        # failed to start: the parts started before it wait on the stop to end.
        try:
            core = _core(settings, stack)
            publishing = _publishing(settings, console, core, stack)
            socket_mode = _slack_socket(settings, core, publishing, stack)
            work, reactions = _outcome_work(settings, core, publishing, stack, stop)
            mcp = await _mcp_endpoint(settings, core, publishing, stack)
            runner = await _receivers(settings, core, reactions, socket_mode, stack, stop, mcp)
            _when_stopping(publishing, work, stack)
            for address in runner.addresses:
                logger.info("receiving alerts on http://%s:%s/alerts", address[0], address[1])
                if mcp is not None:
                    logger.info("serving MCP on http://%s:%s/mcp", address[0], address[1])
            logger.info(
                "incidents go to %s; store: %s",
                "the console" if settings.console_mode else "Slack",
                describe_store(settings),
            )
            if settings.alert_queue_url:
                logger.info("consuming alerts from %s", settings.alert_queue_url)
            logger.info("replica %s", core.leases.holder)
            await stop.event.wait()
            logger.info("stopping: finishing what is in hand")
        finally:
            stop.begin()
    logger.info("stopped")


def _core(settings: Settings, stack: AsyncExitStack) -> _Core:
    store = build_store(settings)
    stack.callback(store.close)
    ingestor = build_ingestor(settings, store)
    # DynamoDB answers many requests at once; SQLite serializes on its connection anyway.
    executor = _threads(stack, STORE_THREADS if settings.store == "dynamodb" else 1, "store")
    # Leases have threads of their own, so that a renewal is never queued behind a storm's
    # writes until the lease has run out and another replica has taken the work over.
    leases = Leases(store, settings.replica_lease, _threads(stack, 2, "leases"))
    # Parsing is CPU only: on a thread of its own it overlaps the store's writes (an fsync,
    # a DynamoDB round trip), and a large payload never stalls the event loop.
    parse_executor = _threads(stack, 1, "parse")
    runbooks = load_runbooks(settings.runbooks_file)
    # One boto3 session for context and graphs: each session loads the service models anew.
    clients = aws_clients(settings)
    # The team's MCP servers connect in the background: one that is down delays nothing.
    mcp = build_mcp_tools(settings)
    if mcp is not None:
        mcp.start()
        stack.push_async_callback(mcp.close)
    engine = build_engine(settings, store, executor, leases, runbooks, clients, mcp)
    stack.push_async_callback(engine.close)
    return _Core(store, ingestor, executor, parse_executor, leases, runbooks, clients, engine)


def _threads(stack: AsyncExitStack, workers: int, name: str) -> ThreadPoolExecutor:
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    stack.callback(executor.shutdown, wait=True, cancel_futures=True)
    return executor


def _publishing(
    settings: Settings, console: Console | None, core: _Core, stack: AsyncExitStack
) -> _Publishing:
    publisher: ConsolePublisher | SlackPublisher
    slack: SlackPublisher | None = None
    if settings.console_mode:
        publisher = ConsolePublisher(console or Console(), settings.update_interval)
    else:
        from bot.slack_publisher import SlackPublisher

        slack = SlackPublisher(
            slack_client(settings),
            core.ingestor.service,
            settings,
            core.leases,
            core.executor,
            runbooks=core.runbooks,
            store=core.store,
        )
        publisher = slack
    stack.push_async_callback(publisher.close)
    notifier, scheduler = build_scheduled(
        settings, core.store, core.ingestor, core.leases, core.executor, publisher, slack
    )
    stack.push_async_callback(notifier.close)
    _background(stack, notifier.forever(settings.delivery_interval))
    postmortems, postmortem_claude = build_postmortems(settings, core.store, core.executor)
    if postmortem_claude is not None:
        stack.push_async_callback(postmortem_claude.close)
    return _Publishing(publisher, slack, notifier, scheduler, postmortems)


def _slack_socket(
    settings: Settings, core: _Core, publishing: _Publishing, stack: AsyncExitStack
) -> AsyncSocketModeHandler | None:
    """Slack's listeners over Socket Mode, connecting in the background (a refusing Slack must
    not stop the receiver); None in console mode."""
    slack = publishing.slack
    if slack is None:
        return None
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp

    from bot.slack_app import SlackDeps, register

    bolt = AsyncApp(client=slack.client, logger=logging.getLogger("slack_bolt"))
    deps = SlackDeps(
        settings=settings,
        service=core.ingestor.service,
        store=core.store,
        ingestor=core.ingestor,
        engine=core.engine,
        publisher=slack,
        offload=Offload(core.executor),
        notifier=publishing.notifier,
        tickets=publishing.notifier.channels.jira,
        postmortems=publishing.postmortems,
    )
    register(bolt, deps)
    assert settings.slack_app_token is not None
    socket_mode = AsyncSocketModeHandler(
        bolt, settings.slack_app_token.get_secret_value(), web_client=slack.client
    )
    stack.push_async_callback(socket_mode.close_async)
    _background(stack, connect_slack(socket_mode, deps, settings.slack_resync_interval))
    _background(stack, slack.resync_forever(settings.slack_resync_interval))
    return socket_mode


def _outcome_work(
    settings: Settings,
    core: _Core,
    publishing: _Publishing,
    stack: AsyncExitStack,
    stop: Stop,
) -> tuple[OutcomeWork, Reactions]:
    """What a recorded alert sets off (`bot.outcomes`), queued per incident (`Reactions`).
    At a stop, after the alerts in hand are written: message updates and analyses get until
    the deadline, then what is left is cancelled."""
    slack = publishing.slack
    graphs = MetricGraphs(core.clients, slack) if slack is not None else None
    work = OutcomeWork(
        core.engine,
        publishing.publisher,
        publishing.notifier,
        graphs,
        settings.analysis_concurrency,
    )
    reactions = Reactions(work.start, work.react)

    async def finish() -> None:
        await stop.bounded(reactions.drain(), "message updates")
        await stop.bounded(work.finish(), "analyses")
        reactions.cancel()
        await work.cancel()
        await reactions.drain()

    stack.push_async_callback(finish)
    return work, reactions


async def _receivers(
    settings: Settings,
    core: _Core,
    reactions: Reactions,
    socket_mode: AsyncSocketModeHandler | None,
    stack: AsyncExitStack,
    stop: Stop,
    mcp: McpEndpoint | None = None,
) -> web.AppRunner:
    """The group committer, the HTTP receiver (with `/mcp` when `mcp` is given) and the SQS
    consumer, taking alerts from now."""
    committer = GroupCommitter(
        core.ingestor,
        core.executor,
        parse_executor=core.parse_executor,
        window=settings.group_commit_window.total_seconds(),
        max_alerts=settings.ingest_backlog,
        on_commit=reactions.push,
    )
    committer.start()
    stack.push_async_callback(lambda: stop.bounded(committer.close(), "writing the alerts in hand"))
    receiver = Receiver(
        committer,
        settings.webhook_api_key.get_secret_value() if settings.webhook_api_key else None,
        checks={"slack": slack_connection(socket_mode)} if socket_mode is not None else None,
    )
    routes = receiver.app()
    if mcp is not None:
        mcp.add_to(routes)
    runner = web.AppRunner(
        routes, handle_signals=False, access_log=None, shutdown_timeout=REQUESTS_GRACE
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    consumer = sqs_consumer(settings, committer)
    if consumer is not None:
        consuming = asyncio.create_task(consumer.run(stop.event))
        stack.push_async_callback(lambda: stop.bounded(_finished(consuming), "the SQS consumer"))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.begin)
        stack.callback(loop.remove_signal_handler, signum)
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    return runner


async def _mcp_endpoint(
    settings: Settings, core: _Core, publishing: _Publishing, stack: AsyncExitStack
) -> McpEndpoint | None:
    """MCP over Streamable HTTP at `/mcp`, when `MCP_TOKEN` is set: the tools act through
    this process's lifecycle, Slack publisher and notifier, as a click does. The SDK is
    imported only then. Its session manager runs from here until the receiver has stopped."""
    if settings.mcp_token is None:
        return None
    from bot.followers import Followers
    from bot.mcp_server.http import McpEndpoint
    from bot.mcp_server.server import build_server
    from bot.mcp_server.tools import IncidentTools, ToolDeps
    from bot.mcp_server.views import Redactor

    slack = publishing.slack
    followers = Followers(
        slack=slack,
        notifier=publishing.notifier,
        permalink=slack.permalink if slack is not None else no_permalink,
    )
    deps = ToolDeps(
        store=core.store,
        service=core.ingestor.service,
        ingestor=core.ingestor,
        engine=core.engine,
        offload=Offload(core.executor),
        redactor=Redactor(settings.redact_ips),
        followers=followers,
    )
    server = build_server(
        IncidentTools(deps), allow_writes=settings.mcp_allow_writes, log_level=settings.log_level
    )
    endpoint = McpEndpoint(server, settings.mcp_token.get_secret_value())
    await stack.enter_async_context(endpoint.running())
    return endpoint


def _when_stopping(publishing: _Publishing, work: OutcomeWork, stack: AsyncExitStack) -> None:
    """Started last, so stopped first: the schedule; the graphs under way (only pictures);
    the Slack publisher's pacing (from now on nothing waits on another replica's lease). The
    stop's deadline starts before all of these, in `run`."""
    publishing.scheduler.start()
    stack.callback(publishing.scheduler.shutdown, wait=False)
    stack.callback(work.cancel_pictures)
    if publishing.slack is not None:
        stack.callback(publishing.slack.stopping)


def _background(stack: AsyncExitStack, work: Coroutine[Any, Any, None]) -> None:
    """A task that runs until the stop, which cancels it."""
    task = asyncio.create_task(work)

    async def cancel() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(cancel)


async def _finished(task: asyncio.Task[None]) -> None:
    """Wait for a task; cancelled with this wait, it is cancelled too."""
    await task
