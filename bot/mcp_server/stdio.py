"""`incident-bot mcp`: the MCP server over stdio, on the configured store.

The process a local client (Claude Desktop, Claude Code) starts for itself. It reads and
writes the store the bot uses, and runs no Slack listener, scheduler or receiver of its own:
a write made here goes through the same lifecycle and the same notifier outbox (PagerDuty,
Jira and Teams are told from here, and retried by the bot if they fail), and the bot's resync
brings the Slack message up to date within `SLACK_RESYNC_INTERVAL`, as it does for any change
another replica made.

stdout is the protocol's wire: everything else this process says goes to stderr (`bot.logs`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack

from bot.components import build_engine, build_ingestor, build_notifier, build_store, slack_client
from bot.followers import Followers
from bot.mcp_server.server import build_server
from bot.mcp_server.tools import IncidentTools, ToolDeps
from bot.mcp_server.views import Redactor
from bot.settings import Settings
from bot.slack_posts import permalink_of
from incidents.leases import Leases
from incidents.offload import Offload
from incidents.store import ChatRefStore
from notify.dispatch import no_permalink

logger = logging.getLogger(__name__)

STORE_THREADS = 4


async def serve_stdio(settings: Settings) -> None:
    """Serve until the client closes stdin; every part is closed on the way out."""
    async with AsyncExitStack() as stack:
        store = build_store(settings)
        stack.callback(store.close)
        # SQLite serializes on its one connection anyway; DynamoDB answers several at once.
        threads = STORE_THREADS if settings.store == "dynamodb" else 1
        executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")
        stack.callback(executor.shutdown, wait=True, cancel_futures=True)
        offload = Offload(executor)
        ingestor = build_ingestor(settings, store)
        engine = build_engine(settings, store, executor)
        stack.push_async_callback(engine.close)
        leases = Leases(store, settings.replica_lease, executor)
        notifier = build_notifier(settings, store, leases, executor, None)
        stack.push_async_callback(notifier.close)
        followers = Followers(
            notifier=notifier, permalink=slack_permalink(settings, store, offload)
        )
        deps = ToolDeps(
            store=store,
            service=ingestor.service,
            ingestor=ingestor,
            engine=engine,
            offload=offload,
            redactor=Redactor(settings.redact_ips),
            followers=followers,
        )
        server = build_server(
            IncidentTools(deps),
            allow_writes=settings.mcp_allow_writes,
            log_level=settings.log_level,
        )
        logger.info(
            "serving MCP over stdio (writes %s)", "on" if settings.mcp_allow_writes else "off"
        )
        await server.run_stdio_async()


def slack_permalink(
    settings: Settings, store: ChatRefStore, offload: Offload
) -> Callable[[str], Awaitable[str | None]]:
    """The link to an incident's Slack message, asked of Slack with the bot's token; without
    Slack tokens, or when Slack will not say, None (the channel and ts are still given)."""
    if settings.console_mode:
        return no_permalink
    client = slack_client(settings)

    async def permalink(incident_id: str) -> str | None:
        ref = await offload(store.message_ref, incident_id)
        return await permalink_of(client, ref) if ref is not None else None

    return permalink
