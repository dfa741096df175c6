"""The composition root: settings in, a running process out. Nothing connects at import time.

`run` wires the store, the lifecycle, the receiver and the publisher, serves until SIGTERM or
SIGINT, then stops accepting, finishes the requests in flight, flushes coalesced updates and
closes the store, so an alert that got its 202 is never left half-recorded.

An SDK is imported where a configuration first uses it, not at the top: anthropic only with
`ANTHROPIC_API_KEY`, boto3 only with DynamoDB, SES, SQS or AWS configured, jira only with
Jira, Slack's only outside console mode. Imported up front, they put an idle bot on the
embedded defaults at 111 MB instead of 71, against issue 13's budget of 120 MB through a
storm; `tests/unit/test_lazy_imports.py` holds the line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from rich.console import Console

from analysis.aws_clients import BotoClients, ClientFactory
from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.gather import ContextGatherer
from analysis.postmortem import PostMortemWriter
from analysis.runbooks import RunbookGatherer, Runbooks, load_runbooks
from blocks.thread import delivery_failed_note, delivery_sent_note
from bot.console import ConsolePublisher
from bot.digest import DEFAULT_DIGEST_AT, DIGEST, Digest
from bot.escalation import Escalator, Reminders
from bot.graphs import MetricGraphs
from bot.postmortems import PostMortems
from bot.reactions import Reactions
from bot.scheduler import build_scheduler
from bot.settings import Settings
from bot.slack_pacing import Priority
from incidents.escalation import EscalationPolicy
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, LifecyclePolicy, OutcomeKind, RecordOutcome
from incidents.models import Alert, Delivery, Incident, Severity
from incidents.sqlite_store import SqliteStore
from incidents.store import Store
from ingest.group_commit import GroupCommitter
from ingest.pipeline import Ingestor
from ingest.sqs import ConsumerConfig, SqsConsumer
from ingest.webhook import Check, Receiver
from notify.dispatch import SLACK, Channels, EmailTransport, Notifier, no_permalink
from notify.email_transport import SesTransport, SmtpTransport
from notify.jira import JiraTickets
from notify.outbox import Sender
from notify.pagerduty import PagerDutyEvents
from notify.teams import TeamsWebhook

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack_app import SlackDeps
    from bot.slack_publisher import SlackPublisher

__all__ = ["Ingestor", "build_engine", "build_ingestor", "run"]

MAX_CONNECT_DELAY = 300.0
_NOTIFIED = (OutcomeKind.OPENED, OutcomeKind.REOPENED, OutcomeKind.RESOLVED)
STORE_THREADS = 8
STOP_WITHIN = 8.0
"""Seconds from SIGTERM to the end of what a stop waits for (analyses, message updates):
inside the 10 s an orchestrator grants, with room to close the connections after."""
REQUESTS_GRACE = 3.0
"""Seconds a stop waits for HTTP requests in flight to be answered."""
# Any of these means the environment configures AWS; without them, no AWS call is made.
_AWS_SIGNALS = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)

logger = logging.getLogger(__name__)


def build_store(settings: Settings) -> Store:
    """`STORE=sqlite` (one file, the embedded default) or `STORE=dynamodb` (the tables named
    with `DYNAMODB_TABLE_PREFIX`, in `settings.aws_region`; boto3 reads endpoint and
    credentials itself)."""
    if settings.store == "dynamodb":
        from incidents.dynamodb_store import DynamoStore  # boto3: only for this store

        return DynamoStore(
            settings.dynamodb_table_prefix,
            retention=settings.retention,
            region=settings.aws_region,
        )
    return SqliteStore(settings.sqlite_path)


def describe_store(settings: Settings) -> str:
    if settings.store == "dynamodb":
        return f"DynamoDB tables {settings.dynamodb_table_prefix}-*"
    return f"SQLite at {settings.sqlite_path.resolve()}"


def build_ingestor(settings: Settings) -> Ingestor:
    store = build_store(settings)
    policy = LifecyclePolicy(
        reopen_window=settings.reopen_window,
        flap_threshold=settings.flap_threshold,
        flap_window=settings.flap_window,
    )
    return Ingestor(IncidentService(store, policy), store)


class _AwsNotConfigured:
    """Stands in for boto3 when nothing configures AWS: a laptop or CI run must not probe
    instance metadata for credentials, so AWS context is skipped with a note instead."""

    def __call__(self, service: str, region: str | None) -> Any:
        raise RuntimeError(
            "AWS is not configured here (no AWS_REGION, AWS_PROFILE, credentials or endpoint)"
        )


def aws_clients(settings: Settings) -> ClientFactory:
    """boto3 clients for context and graphs when the environment configures AWS; else a
    factory that refuses, so that each use becomes a note rather than a metadata probe."""
    if settings.aws_region or any(os.environ.get(name) for name in _AWS_SIGNALS):
        return BotoClients(
            region=settings.aws_region, read_timeout=settings.context_timeout.total_seconds()
        )
    return _AwsNotConfigured()


def claude_client(settings: Settings) -> AsyncAnthropic | None:
    """The Messages API client (`ANTHROPIC_BASE_URL` is read by the SDK), with explicit
    retries and timeout; None without `ANTHROPIC_API_KEY`: the offline writers then."""
    if settings.anthropic_api_key is None:
        return None
    from anthropic import AsyncAnthropic

    return AsyncAnthropic(
        api_key=settings.anthropic_api_key.get_secret_value(),
        max_retries=settings.analysis_max_retries,
        timeout=settings.analysis_timeout.total_seconds(),
    )


def build_postmortems(
    settings: Settings, store: Store, executor: Executor | None
) -> tuple[PostMortems, AsyncAnthropic | None]:
    """The post-mortem drafter, and its Claude client for the caller to close."""
    client = claude_client(settings)
    writer = None
    if client is not None:
        writer = PostMortemWriter(
            client,
            model=settings.analysis_model,
            fast_model=settings.analysis_model_fast,
            prices=settings.analysis_prices,
            redact_ips=settings.redact_ips,
        )
    drafts = PostMortems(store, writer, ack_targets=settings.escalate_after, executor=executor)
    return drafts, client


def build_engine(
    settings: Settings,
    store: Store,
    executor: Executor | None,
    leases: Leases | None = None,
    runbooks: Runbooks | None = None,
    clients: ClientFactory | None = None,
) -> AnalysisEngine:
    """`leases` makes replicas share one analysis per problem; a one-shot command needs none.
    The runbook matching the alert (`runbooks`, else `RUNBOOKS_FILE` read now) is part of
    the context."""
    client = claude_client(settings)
    claude = ClaudeAnalyzer(client) if client is not None else None
    gatherer = RunbookGatherer(
        ContextGatherer(
            store,
            clients or aws_clients(settings),
            timeout=settings.context_timeout.total_seconds(),
        ),
        runbooks if runbooks is not None else load_runbooks(settings.runbooks_file),
    )
    config = EngineConfig(
        model=settings.analysis_model,
        fast_model=settings.analysis_model_fast,
        cache_ttl=settings.analysis_cache_ttl,
        redact_ips=settings.redact_ips,
        prices=settings.analysis_prices,
    )
    return AnalysisEngine(
        store, config, claude=claude, gatherer=gatherer, executor=executor, leases=leases
    )


def jira_tickets(settings: Settings) -> JiraTickets | None:
    if not settings.jira_enabled:
        return None
    assert settings.jira_url and settings.jira_email and settings.jira_project
    assert settings.jira_api_token is not None
    return JiraTickets(
        settings.jira_url,
        settings.jira_email,
        settings.jira_api_token.get_secret_value(),
        settings.jira_project,
        issue_type=settings.jira_issue_type,
        priorities=settings.jira_priorities,
        labels=settings.jira_labels,
        components=settings.jira_components,
    )


def email_transport(settings: Settings) -> EmailTransport | None:
    """SMTP with STARTTLS and login, or SES through boto3 (in `settings.aws_region`,
    credentials from the environment, as for SQS); None when email is off."""
    if not settings.email_enabled:
        return None
    if settings.email_transport == "ses":
        import boto3

        return SesTransport(boto3.client("ses", region_name=settings.aws_region))
    assert settings.smtp_host is not None
    return SmtpTransport(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_user,
        settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
    )


def build_channels(settings: Settings) -> Channels:
    """Each channel that its settings turn on; the rest stay None, and nothing connects yet."""
    channels = Channels(
        jira=jira_tickets(settings),
        jira_resolve_transition=settings.jira_resolve_transition,
        email=email_transport(settings),
        email_from=settings.email_from or "",
        email_to=settings.email_recipients,
        email_on_critical=settings.email_on_critical,
        teams_route=settings.teams_webhook_for,
    )
    if settings.pagerduty_routing_key is not None:  # pagerduty_enabled, narrowed for mypy
        channels.pagerduty = PagerDutyEvents(
            settings.pagerduty_routing_key.get_secret_value(), settings.pagerduty_events_url
        )
        channels.closers.append(channels.pagerduty.close)
    if settings.teams_enabled:
        channels.teams = TeamsWebhook()
        channels.closers.append(channels.teams.close)
    return channels


def build_notifier(
    settings: Settings,
    store: Store,
    leases: Leases,
    executor: Executor,
    slack: SlackPublisher | None,
    senders: Mapping[str, Sender] | None = None,
) -> Notifier:
    """The outbound channels, with what was sent (and what failed for good) told in the
    incident's thread when Slack is on; the outbox logs both either way. `senders` are the
    bot's own deliveries (reminders, the digest)."""

    async def tell_sent(delivery: Delivery) -> None:
        note = delivery_sent_note(delivery)
        if slack is not None and note is not None:
            await slack.thread_note(delivery.incident_id, note, Priority.NOTE)

    async def tell_failed(delivery: Delivery) -> None:
        if slack is not None:
            note = delivery_failed_note(delivery)
            await slack.thread_note(delivery.incident_id, note, Priority.NOTE)

    return Notifier(
        store,
        leases,
        build_channels(settings),
        permalink=slack.permalink if slack is not None else no_permalink,
        on_sent=tell_sent,
        on_failed=tell_failed,
        senders=senders,
        executor=executor,
    )


def escalation_policy(settings: Settings) -> EscalationPolicy:
    return EscalationPolicy(
        {severity: settings.escalate_after(severity) for severity in Severity},
        settings.escalation_repeats,
    )


def build_scheduled(
    settings: Settings,
    ingestor: Ingestor,
    leases: Leases,
    executor: Executor,
    publisher: ConsolePublisher | SlackPublisher,
    slack: SlackPublisher | None,
) -> tuple[Notifier, AsyncIOScheduler]:
    """The notifier with the bot's own deliveries (escalation reminders, the daily digest)
    in its outbox, and the scheduler that requests them; the scheduler is not started."""
    store = ingestor.store
    policy = escalation_policy(settings)
    reminders = Reminders(
        store,
        policy,
        publisher.post_in_thread,
        mention=settings.oncall_mention,
        executor=executor,
    )
    digest = Digest(
        store,
        publisher.post_to_channel,
        ZoneInfo(settings.digest_tz),
        settings.digest_at or DEFAULT_DIGEST_AT,
        executor=executor,
    )
    notifier = build_notifier(
        settings, store, leases, executor, slack, {SLACK: reminders.send, DIGEST: digest.send}
    )
    escalator = Escalator(
        store,
        policy,
        notifier,
        silenced_until=ingestor.service.silenced_until,
        executor=executor,
    )

    async def post_digest() -> None:
        if await digest.request(notifier.outbox):
            logger.info("daily digest requested")

    scheduler = build_scheduler(
        leases,
        escalate=escalator.run_once if policy.enabled else None,
        escalation_interval=settings.escalation_interval,
        digest=post_digest if settings.digest_at else None,
        digest_at=settings.digest_at,
        digest_tz=ZoneInfo(settings.digest_tz),
    )
    return notifier, scheduler


def sqs_consumer(settings: Settings, committer: GroupCommitter) -> SqsConsumer | None:
    """The SQS consumer when `ALERT_QUEUE_URL` is set, in `settings.aws_region`; boto3 reads
    endpoint and credentials from the environment itself."""
    if not settings.alert_queue_url:
        return None
    import boto3
    from botocore.config import Config

    sqs = boto3.client(
        "sqs",
        region_name=settings.aws_region,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )
    return SqsConsumer(
        sqs,
        committer,
        ConsumerConfig(
            queue_url=settings.alert_queue_url,
            pollers=settings.sqs_pollers,
            max_in_flight=settings.sqs_max_in_flight,
            visibility_timeout=settings.sqs_visibility_timeout,
            wait_seconds=settings.sqs_wait_seconds,
        ),
    )


def slack_client(settings: Settings) -> AsyncWebClient:
    """The one Web API client: `SLACK_API_URL`, and slack_sdk's retry handlers for
    connection errors, 429s (honouring `Retry-After`) and 5xx."""
    assert settings.slack_bot_token is not None
    from slack_sdk.http_retry.builtin_async_handlers import (
        AsyncConnectionErrorRetryHandler,
        AsyncRateLimitErrorRetryHandler,
        AsyncServerErrorRetryHandler,
    )
    from slack_sdk.web.async_client import AsyncWebClient

    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncRateLimitErrorRetryHandler(max_retry_count=8),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ],
    )


async def connect_slack(
    socket_mode: AsyncSocketModeHandler, deps: SlackDeps, retry: timedelta
) -> None:
    """Connect to Slack, and keep trying while it refuses: a revoked token or an outage
    must not stop the receiver, which goes on recording alerts; their messages follow."""
    from bot.slack_publisher import explain_slack_error

    delay = retry.total_seconds()
    while True:
        try:
            identity = await socket_mode.client.web_client.auth_test()
            deps.bot_user_id = str(identity.get("user_id", ""))
            await socket_mode.connect_async()  # type: ignore[no-untyped-call]
        except Exception as exc:  # any refusal: the loop is the retry, the receiver carries on
            logger.error(
                "cannot connect to Slack (%s); alerts are still recorded, retrying in %.0fs",
                explain_slack_error(exc),
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_CONNECT_DELAY)
            continue
        logger.info("connected to Slack over Socket Mode as %s", identity.get("user"))
        return


async def run(settings: Settings, console: Console | None = None) -> None:
    ingestor = build_ingestor(settings)
    # DynamoDB answers many requests at once; SQLite serializes on its connection anyway.
    executor = ThreadPoolExecutor(
        max_workers=STORE_THREADS if settings.store == "dynamodb" else 1,
        thread_name_prefix="store",
    )
    # Leases have threads of their own, so that a renewal is never queued behind a storm's
    # writes until the lease has run out and another replica has taken the work over.
    lease_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="leases")
    # Parsing is CPU only: on a thread of its own it overlaps the store's writes (an fsync,
    # a DynamoDB round trip), and a large payload never stalls the event loop.
    parse_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
    leases = Leases(ingestor.store, settings.replica_lease, lease_executor)
    runbooks = load_runbooks(settings.runbooks_file)
    # One boto3 session for context and graphs: each session loads the service models anew.
    clients = aws_clients(settings)
    engine = build_engine(settings, ingestor.store, executor, leases, runbooks, clients)
    background: set[asyncio.Task[None]] = set()
    socket_mode: AsyncSocketModeHandler | None = None
    publisher: ConsolePublisher | SlackPublisher
    slack: SlackPublisher | None = None
    if settings.console_mode:
        publisher = ConsolePublisher(console or Console(), settings.update_interval)
    else:
        from bot.slack_publisher import SlackPublisher

        slack = SlackPublisher(
            slack_client(settings),
            ingestor.service,
            settings,
            leases,
            executor,
            runbooks=runbooks,
        )
        publisher = slack
    notifier, scheduler = build_scheduled(settings, ingestor, leases, executor, publisher, slack)
    background.add(asyncio.create_task(notifier.forever(settings.delivery_interval)))
    scheduler.start()
    postmortems, postmortem_claude = build_postmortems(settings, ingestor.store, executor)
    if slack is not None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
        from slack_bolt.async_app import AsyncApp

        from bot.slack_app import SlackDeps, register

        client = slack.client
        bolt = AsyncApp(client=client, logger=logging.getLogger("slack_bolt"))
        deps = SlackDeps(
            settings=settings,
            service=ingestor.service,
            ingestor=ingestor,
            engine=engine,
            publisher=slack,
            executor=executor,
            notifier=notifier,
            tickets=notifier.channels.jira,
            postmortems=postmortems,
        )
        register(bolt, deps)
        assert settings.slack_app_token is not None
        socket_mode = AsyncSocketModeHandler(
            bolt, settings.slack_app_token.get_secret_value(), web_client=client
        )
        background.add(
            asyncio.create_task(connect_slack(socket_mode, deps, settings.slack_resync_interval))
        )
        background.add(asyncio.create_task(slack.resync_forever(settings.slack_resync_interval)))
    graphs = MetricGraphs(clients, slack) if slack is not None else None
    analysis_slots = asyncio.Semaphore(settings.analysis_concurrency)
    # Work spawned beside the ingest path: analyses and notifications are awaited at stop
    # (within the stop deadline); graphs are only pictures, so a stop cancels them.
    analyses: set[asyncio.Task[Any]] = set()
    pictures: set[asyncio.Task[Any]] = set()

    def spawn(work: Coroutine[Any, Any, Any], tasks: set[asyncio.Task[Any]] = analyses) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def analyze(incident: Incident, alert: Alert) -> None:
        """A background task per new incident: the receiver has long answered 202, and the
        incident is recorded whatever happens here; a failure is logged and shown."""
        try:
            async with analysis_slots:
                analysis = await engine.analyze(incident, alert)
        except Exception:  # the task's last stop: nothing above it would report the failure
            logger.exception("analysis of %s failed", incident.id)
            await publisher.publish_analysis_failure(incident)
            return
        await publisher.publish_analysis(incident, analysis)
        await notifier.analysed(incident, analysis)

    def start(outcome: RecordOutcome) -> None:
        """An analysis starts as soon as its incident is durable, before anything is
        published: a publishing failure can delay a message, never cost an analysis."""
        if outcome.incident is not None and outcome.kind in (
            OutcomeKind.OPENED,
            OutcomeKind.REOPENED,
        ):
            spawn(analyze(outcome.incident, outcome.alert))

    async def react(outcome: RecordOutcome) -> None:
        """The message first; then what writes in its thread (a graph, the notes of pages
        and mails), which needs the message to exist."""
        await publisher.publish(outcome)
        incident = outcome.incident
        if incident is None:
            return
        if (
            graphs is not None
            and outcome.kind in (OutcomeKind.OPENED, OutcomeKind.REOPENED)
            # A flapping incident's thread would fill with the same picture.
            and not incident.flapping
            and graphs.applies(outcome.alert)
        ):
            spawn(graphs.post(incident, outcome.alert), pictures)
        if outcome.kind in _NOTIFIED:
            spawn(notify(outcome.kind, incident))

    async def notify(kind: OutcomeKind, incident: Incident) -> None:
        """Pages and mails run beside the ingest path, so that a slow PagerDuty never holds
        an SQS slot or a receiver request; what fails is retried by the outbox."""
        try:
            if kind is OutcomeKind.RESOLVED:
                await notifier.resolved(incident, incident.resolved_by or "")
            else:
                await notifier.opened(incident)
        except Exception:  # the task's last stop: nothing above it would report the failure
            logger.exception("notifications for %s failed", incident.id)

    reactions = Reactions(start, react)
    committer = GroupCommitter(
        ingestor,
        executor,
        parse_executor=parse_executor,
        window=settings.group_commit_window.total_seconds(),
        max_alerts=settings.ingest_backlog,
        on_commit=reactions.push,
    )
    receiver = Receiver(
        committer,
        settings.webhook_api_key.get_secret_value() if settings.webhook_api_key else None,
        checks={"slack": slack_connection(socket_mode)} if socket_mode is not None else None,
    )
    runner = web.AppRunner(
        receiver.app(), handle_signals=False, access_log=None, shutdown_timeout=REQUESTS_GRACE
    )
    await runner.setup()
    stop = asyncio.Event()
    consumer = sqs_consumer(settings, committer)
    committer.start()
    consuming = asyncio.create_task(consumer.run(stop)) if consumer else None
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
            "incidents go to %s; store: %s",
            "the console" if settings.console_mode else "Slack",
            describe_store(settings),
        )
        if consumer is not None:
            logger.info("consuming alerts from %s", settings.alert_queue_url)
        logger.info("replica %s", leases.holder)
        await stop.wait()
        logger.info("stopping: finishing what is in hand")
    finally:
        deadline = loop.time() + STOP_WITHIN
        stop.set()
        if slack is not None:
            slack.stopping()
        scheduler.shutdown(wait=False)
        for task in pictures:
            task.cancel()
        if consuming is not None:
            await _within(deadline, _finished(consuming), "the SQS consumer")
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
        await _within(deadline, committer.close(), "writing the alerts in hand")
        await _within(deadline, reactions.drain(), "message updates")
        await _within(deadline, _all_of(analyses), "analyses")
        reactions.cancel()
        for task in [*analyses, *pictures]:
            task.cancel()
        await asyncio.gather(*analyses, *pictures, return_exceptions=True)
        await reactions.drain()
        if socket_mode is not None:
            await socket_mode.close_async()  # type: ignore[no-untyped-call]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await engine.close()
        if postmortem_claude is not None:
            await postmortem_claude.close()
        await publisher.close()
        await notifier.close()
        executor.shutdown(wait=True, cancel_futures=True)
        parse_executor.shutdown(wait=True, cancel_futures=True)
        lease_executor.shutdown(wait=True, cancel_futures=True)
        ingestor.store.close()
        logger.info("stopped")


def slack_connection(socket_mode: AsyncSocketModeHandler) -> Check:
    """Readiness of Slack: the Socket Mode connection is up (bolt's health-check advice)."""

    async def check() -> str | None:
        client = socket_mode.client
        connected = await client.is_connected()
        return None if connected else "Socket Mode is not connected"

    return check


async def _finished(task: asyncio.Task[None]) -> None:
    """Wait for a task; cancelled with this wait, it is cancelled too."""
    await task


async def _all_of(tasks: set[asyncio.Task[Any]]) -> None:
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


async def _within(deadline: float, work: Coroutine[Any, Any, None], what: str) -> None:
    """Wait for `work` until the stop deadline; what is left then is cancelled and said."""
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(work, max(0.0, remaining))
    except TimeoutError:
        logger.warning("stopping: %s still running at the stop deadline, cancelled", what)
