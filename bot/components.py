"""The bot's parts, each built from the settings: the store, the analysis engine, the outbound
channels, the notifier and its schedule, the SQS consumer, the Slack client.

Each builder connects nothing and imports its SDK only when the settings use it (anthropic
with `ANTHROPIC_API_KEY`, boto3 with DynamoDB, SES, SQS or AWS, jira with Jira, Slack's
outside console mode): `tests/unit/test_lazy_imports.py` holds an idle bot on the embedded
defaults to the memory issue 13 budgets. `bot.app.run` assembles them; the one-shot commands
(`analyze`, `postmortem`, `doctor`) build only the parts they need.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from concurrent.futures import Executor
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from analysis.aws_clients import BotoClients, ClientFactory
from analysis.claude import ClaudeAnalyzer
from analysis.engine import AnalysisEngine, EngineConfig
from analysis.gather import ContextGatherer
from analysis.investigation.aws_tools import AwsToolLimits, AwsTools
from analysis.investigation.loop import InvestigationLimits, Investigator
from analysis.investigation.past_incidents import StoreTools
from analysis.investigation.registry import CombinedTools, ToolSource
from analysis.postmortem import PostMortemWriter
from analysis.runbooks import RunbookGatherer, Runbooks, load_runbooks
from blocks.thread import delivery_failed_note, delivery_sent_note
from bot.console import ConsolePublisher
from bot.digest import DEFAULT_DIGEST_AT, DIGEST, Digest
from bot.escalation import Escalator, Reminders
from bot.postmortems import PostMortems
from bot.scheduler import build_scheduler
from bot.settings import Settings
from bot.slack_pacing import Priority
from incidents.escalation import EscalationPolicy
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, LifecyclePolicy
from incidents.models import Delivery, Severity
from incidents.sqlite import SqliteStore
from incidents.store import Store
from ingest.group_commit import GroupCommitter
from ingest.pipeline import Ingestor
from ingest.sqs import ConsumerConfig, SqsConsumer
from ingest.webhook import Check
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

    from analysis.investigation.mcp_tools import McpTools
    from bot.slack_app import SlackDeps
    from bot.slack_publisher import SlackPublisher

logger = logging.getLogger(__name__)


MAX_CONNECT_DELAY = 300.0


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


def build_store(settings: Settings) -> Store:
    """`STORE=sqlite` (one file, the embedded default) or `STORE=dynamodb` (the tables named
    with `DYNAMODB_TABLE_PREFIX`, in `settings.aws_region`; boto3 reads endpoint and
    credentials itself)."""
    if settings.store == "dynamodb":
        from incidents.dynamodb import DynamoStore  # boto3: only for this store

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


def build_ingestor(settings: Settings, store: Store) -> Ingestor:
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
    mcp: McpTools | None = None,
) -> AnalysisEngine:
    """`leases` makes replicas share one analysis per problem; a one-shot command needs none.
    The runbook matching the alert (`runbooks`, else `RUNBOOKS_FILE` read now) is part of
    the context. `mcp` (`build_mcp_tools`, started by the caller) adds the team's MCP
    servers' tools to the investigation's."""
    client = claude_client(settings)
    claude = ClaudeAnalyzer(client) if client is not None else None
    clients = clients or aws_clients(settings)
    gatherer = RunbookGatherer(
        ContextGatherer(
            store,
            clients,
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
    investigator = (
        Investigator(
            client,
            InvestigationLimits(
                max_steps=settings.investigation_max_steps,
                tool_timeout=settings.investigation_tool_timeout.total_seconds(),
                result_chars=settings.investigation_result_chars,
                max_tokens=settings.investigation_max_tokens,
                max_cost_usd=settings.investigation_max_cost,
            ),
            prices=settings.analysis_prices,
            redact_ips=settings.redact_ips,
        )
        if client is not None
        else None
    )
    return AnalysisEngine(
        store,
        config,
        claude=claude,
        gatherer=gatherer,
        executor=executor,
        leases=leases,
        investigator=investigator,
        tools=CombinedTools(
            StoreTools(store),
            *aws_tools(settings, clients),
            *([mcp] if mcp is not None else []),
        ),
    )


def aws_tools(settings: Settings, clients: ClientFactory) -> list[ToolSource]:
    """The investigation's AWS tools, unless `INVESTIGATION_AWS_TOOLS=false` or nothing
    configures AWS here (every call would only fail, costing Claude a step each)."""
    if not settings.investigation_aws_tools or isinstance(clients, _AwsNotConfigured):
        return []
    limits = AwsToolLimits(
        log_groups=tuple(settings.investigation_log_groups),
        max_window=settings.investigation_max_window,
    )
    return [AwsTools(clients, limits)]


def build_mcp_tools(settings: Settings) -> McpTools | None:
    """The tools of the servers in `MCP_SERVERS_FILE`, not connected yet: the caller starts
    them and closes them. None without the file, or without Claude to call them; the MCP
    SDK is imported only otherwise."""
    servers = settings.mcp_servers
    if not servers or settings.anthropic_api_key is None:
        return None
    from analysis.investigation.mcp_tools import McpTools

    return McpTools(servers)


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
    store: Store,
    ingestor: Ingestor,
    leases: Leases,
    executor: Executor,
    publisher: ConsolePublisher | SlackPublisher,
    slack: SlackPublisher | None,
) -> tuple[Notifier, AsyncIOScheduler]:
    """The notifier with the bot's own deliveries (escalation reminders, the daily digest)
    in its outbox, and the scheduler that requests them; the scheduler is not started."""
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
    from bot.slack_errors import explain_slack_error

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


def slack_connection(socket_mode: AsyncSocketModeHandler) -> Check:
    """Readiness of Slack: the Socket Mode connection is up (bolt's health-check advice)."""

    async def check() -> str | None:
        client = socket_mode.client
        connected = await client.is_connected()
        return None if connected else "Socket Mode is not connected"

    return check
