"""`incident-bot doctor`: is every configured service reachable with this configuration?

One line per service, `ok` or the reason, so that a failed deployment says in a minute what
is wrong instead of at the first incident. A service that is not configured is listed as
such, not checked. The exit code is non-zero when anything configured fails.

Each check imports its service's SDK itself: `bot.cli` imports this module, and the bot must
not load SDKs it is not configured to use (issue 13's memory budget).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from analysis.investigation.mcp_servers import McpServer
from analysis.runbooks import load_runbooks
from bot.components import build_store, email_transport, jira_tickets, slack_client
from bot.settings import Settings
from incidents.lifecycle import short_duration
from incidents.models import Severity
from notify.jira import TicketError
from notify.outbox import DeliveryError
from notify.pagerduty import PagerDutyEvents
from notify.teams import TeamsWebhook


@dataclass(frozen=True)
class Finding:
    service: str
    ok: bool
    detail: str
    checked: bool = True

    def line(self) -> str:
        mark = "--  " if not self.checked else ("ok  " if self.ok else "FAIL")
        return f"{mark}  {self.service:<10} {self.detail}"


async def diagnose(settings: Settings) -> list[Finding]:
    checks: list[tuple[str, Callable[[], Awaitable[str]] | None, str]] = [
        ("store", lambda: _store(settings), ""),
        ("slack", (lambda: _slack(settings)) if not settings.console_mode else None,
         "not configured: incidents print to the console"),
        ("claude", (lambda: _claude(settings)) if settings.anthropic_api_key else None,
         "not configured: the offline analyzer answers"),
        ("sqs", (lambda: _sqs(settings)) if settings.alert_queue_url else None,
         "not configured: no queue is consumed"),
        ("jira", (lambda: _jira(settings)) if settings.jira_enabled else None,
         "not configured: the Jira button is hidden"),
        ("email", (lambda: _email(settings)) if settings.email_enabled else None,
         "not configured: the Email button is hidden"),
        ("pagerduty", (lambda: _pagerduty(settings)) if settings.pagerduty_enabled else None,
         "not configured: nobody is paged"),
        ("teams", (lambda: _teams(settings)) if settings.teams_enabled else None,
         "not configured: no Teams cards"),
        ("escalate", (lambda: _escalation(settings))
         if any(settings.escalate_after(s) for s in Severity) else None,
         "off for every severity: nobody is reminded"),
        ("digest", (lambda: _digest(settings)) if settings.digest_at else None,
         "not configured: no daily digest"),
        ("runbooks", (lambda: _runbooks(settings)) if settings.runbooks_file else None,
         "not configured: no runbook links"),
        ("mcp", (lambda: _mcp(settings)) if settings.mcp_token else None,
         "HTTP off (no MCP_TOKEN); `incident-bot mcp` serves stdio"),
    ]  # fmt: skip
    checks += _team_mcp_checks(settings)
    findings = []
    for service, check, unconfigured in checks:
        if check is None:
            findings.append(Finding(service, True, unconfigured, checked=False))
            continue
        try:
            findings.append(Finding(service, True, await asyncio.wait_for(check(), 30)))
        except Exception as exc:  # every failure becomes that service's line, never a crash
            findings.append(Finding(service, False, _reason(exc)))
    return findings


async def _escalation(settings: Settings) -> str:
    """What the schedule will do, in words: a wrong delay is easier to see here than at 3 am."""
    delays = ", ".join(
        f"{severity.value} after {short_duration(delay)}"
        for severity in Severity
        if (delay := settings.escalate_after(severity))
    )
    mention = settings.oncall_mention or "nobody (ONCALL_MENTION unset)"
    return f"{delays}; up to {settings.escalation_repeats} reminders mentioning {mention}"


async def _digest(settings: Settings) -> str:
    assert settings.digest_at is not None
    where = settings.slack_channel if not settings.console_mode else "the console"
    return f"daily at {settings.digest_at:%H:%M} {settings.digest_tz} to {where}"


async def _runbooks(settings: Settings) -> str:
    return f"{len(load_runbooks(settings.runbooks_file))} runbook(s) in {settings.runbooks_file}"


async def _mcp(settings: Settings) -> str:
    """Where MCP is served and whether it may change incidents: a token set by mistake, or
    writes left on, should be seen here."""
    where = f"http://{settings.webhook_host}:{settings.webhook_port}/mcp"
    writes = "writes on (MCP_ALLOW_WRITES)" if settings.mcp_allow_writes else "read-only"
    return f"HTTP on at {where}, Bearer token required; {writes}"


def _team_mcp_checks(
    settings: Settings,
) -> list[tuple[str, Callable[[], Awaitable[str]] | None, str]]:
    """One line per server of `MCP_SERVERS_FILE`: it starts, answers and offers every tool
    its allow-list names."""
    servers = settings.mcp_servers
    if not servers:
        return [("mcp-servers", None, "not configured: Claude calls no team MCP server")]
    return [(f"mcp:{server.name}", partial(_team_mcp, server), "") for server in servers]


async def _team_mcp(server: McpServer) -> str:
    from analysis.investigation.mcp_tools import check  # the MCP SDK: only when configured

    return await check(server)


async def _store(settings: Settings) -> str:
    def check() -> str:
        store = build_store(settings)
        try:
            return store.check()
        finally:
            store.close()

    return await asyncio.to_thread(check)


async def _slack(settings: Settings) -> str:
    client = slack_client(settings)
    identity = await client.auth_test()
    channels = sorted({settings.channel_for(severity) for severity in Severity})
    problems = []
    for channel in channels:
        info: dict[str, Any] = (await client.conversations_info(channel=channel))["channel"]
        if not info.get("is_member", False):
            problems.append(f"the bot is not in {channel}: /invite it there")
    if problems:
        raise RuntimeError("; ".join(problems))
    return f"as {identity.get('user')} in {identity.get('team')}; channels {', '.join(channels)}"


async def _claude(settings: Settings) -> str:
    assert settings.anthropic_api_key is not None
    from anthropic import AsyncAnthropic

    client = AsyncAnthropic(
        api_key=settings.anthropic_api_key.get_secret_value(), max_retries=0, timeout=20
    )
    try:
        await client.messages.create(
            model=settings.analysis_model_fast,
            max_tokens=1,
            messages=[{"role": "user", "content": "ping"}],
        )
    finally:
        await client.close()
    return f"{settings.analysis_model_fast} answered"


async def _sqs(settings: Settings) -> str:
    def check() -> str:
        import boto3

        sqs = boto3.client("sqs", region_name=settings.aws_region)
        attributes: dict[str, Any] = sqs.get_queue_attributes(
            QueueUrl=settings.alert_queue_url, AttributeNames=["All"]
        )["Attributes"]
        if "RedrivePolicy" not in attributes:
            raise RuntimeError(
                "the queue has no redrive policy: a poison message would loop; add a DLQ"
            )
        waiting = attributes.get("ApproximateNumberOfMessages", "?")
        return f"{settings.alert_queue_url}: {waiting} waiting, DLQ configured"

    return await asyncio.to_thread(check)


async def _jira(settings: Settings) -> str:
    tickets = jira_tickets(settings)
    assert tickets is not None
    return await asyncio.to_thread(tickets.check)


async def _email(settings: Settings) -> str:
    transport = email_transport(settings)
    assert transport is not None
    return await asyncio.to_thread(transport.check)


async def _pagerduty(settings: Settings) -> str:
    assert settings.pagerduty_routing_key is not None
    events = PagerDutyEvents(
        settings.pagerduty_routing_key.get_secret_value(), settings.pagerduty_events_url
    )
    try:
        return await events.check()
    finally:
        await events.close()


async def _teams(settings: Settings) -> str:
    """Each distinct webhook the severities route to."""
    urls = {url for severity in Severity if (url := settings.teams_webhook_for(severity))}
    teams = TeamsWebhook()
    try:
        return "; ".join([await teams.check(url) for url in sorted(urls)])
    finally:
        await teams.close()


def _reason(exc: Exception) -> str:
    if isinstance(exc, TicketError | DeliveryError):
        return exc.reason
    if type(exc).__module__.startswith("slack_sdk"):
        from bot.slack_errors import explain_slack_error

        return explain_slack_error(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
