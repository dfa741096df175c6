"""Every setting, from the environment (and an optional `.env`), validated once at start-up.

Names follow the configuration contract in docs/configuration.md. A bad value stops start-up
with one line naming the variable, rather than failing later in the middle of an incident.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from analysis.cost import DEFAULT_PRICES, Price
from analysis.investigation.mcp_servers import McpServer, McpServersError, load_servers
from analysis.runbooks import RunbookError, load_runbooks
from incidents.models import Severity
from notify.jira import DEFAULT_PRIORITIES
from notify.pagerduty import DEFAULT_URL as PAGERDUTY_URL

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_MENTION = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MCP_TOKEN_MIN = 24


def parse_duration(value: object) -> timedelta:
    """`90s`, `15m`, `1h`, `2d`, or a bare number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 90s, 15m, 1h or 2d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_optional_duration(value: object) -> timedelta | None:
    """A duration, or `off` (also `none`, `0`, empty) for "never": how an escalation delay
    is switched off for a severity."""
    if value is None or str(value).strip().lower() in ("off", "none", "never", "0", ""):
        return None
    return parse_duration(value)


OptionalDuration = Annotated[timedelta | None, BeforeValidator(parse_optional_duration)]


def parse_rate(value: object) -> float:
    """`1/s`, `50/m` (or `50/min`), `100/10s`, or a bare number of calls per second:
    how Slack's documentation states its rate limits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        per_second = float(value)
    else:
        count, _, period = str(value).partition("/")
        period = period.strip().lower().removesuffix("in") or "1s"  # 50/min is 50/m
        try:
            calls = float(count)
            seconds = parse_duration(period if period[0].isdigit() else f"1{period}")
        except ValueError:
            raise ValueError("not a rate such as 1/s or 50/m") from None
        per_second = calls / seconds.total_seconds() if seconds.total_seconds() > 0 else 0.0
    if not per_second > 0:
        raise ValueError("not a positive rate such as 1/s or 50/m")
    return per_second


PerSecond = Annotated[float, BeforeValidator(parse_rate)]


def parse_clock(value: object) -> time | None:
    """`09:00` or `9:30`: the local time of day the digest is posted at."""
    if value is None or isinstance(value, time):
        return value
    text = str(value).strip()
    if not text:
        return None
    match = _CLOCK.match(text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError("not a time of day such as 09:00")
    return time(int(match.group(1)), int(match.group(2)))


ClockTime = Annotated[time | None, BeforeValidator(parse_clock)]


def parse_names(value: object) -> list[str]:
    """`incident,aws` or a JSON list: the comma form is what people write in an env file."""
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    text = str(value).strip()
    if text.startswith("["):
        return parse_names(json.loads(text))
    return [part.strip() for part in text.split(",") if part.strip()]


Names = Annotated[list[str], NoDecode, BeforeValidator(parse_names)]


def blank_is_unset(value: object) -> object:
    """`AWS_REGION=` (what `AWS_REGION=${AWS_REGION}` gives where the host has none) means no
    region, not a region named ""."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def botocore_region() -> str | None:
    """The region botocore finds by itself when a client is given none: `AWS_DEFAULT_REGION`,
    else the `region` of the profile in the AWS config file. It never reads `AWS_REGION`."""
    # Imported here: only a configuration that talks to AWS needs botocore at start-up.
    from botocore.exceptions import ProfileNotFound
    from botocore.session import Session

    try:
        region = Session().get_config_variable("region")
    except ProfileNotFound as exc:
        raise ValueError(f"AWS_PROFILE: {exc}") from None
    return str(region) if region else None


def split_addresses(raw: str) -> list[str]:
    """Email addresses as people type them: separated by commas, semicolons or spaces."""
    return [part.strip() for part in re.split(r"[,;\s]+", raw) if part.strip()]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_channel: str | None = None
    slack_channel_critical: str | None = None
    slack_channel_high: str | None = None
    slack_channel_medium: str | None = None
    slack_channel_low: str | None = None
    slack_resync_interval: Duration = timedelta(seconds=30)
    # The bot's own pace, in calls per second, at Slack's published limits: chat.postMessage
    # about one per second per channel, chat.update (Tier 3) about 50 per minute per
    # workspace. Replicas each keep their own pace: divide by their number.
    slack_post_rate: PerSecond = 1.0
    slack_update_rate: PerSecond = 50 / 60

    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: SecretStr | None = None
    jira_project: str | None = None
    jira_issue_type: str = "Task"
    jira_resolve_transition: str | None = None
    # JSON, e.g. {"CRITICAL": "Highest", "LOW": "Lowest"}: the severities named override
    # the defaults; an empty name sends no priority for that severity.
    jira_priorities: dict[Severity, str] = Field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    jira_labels: Names = Field(default_factory=lambda: ["incident"])
    jira_components: Names = Field(default_factory=list)

    email_from: str | None = None
    email_to: str | None = None
    email_transport: Literal["smtp", "ses"] = "smtp"
    email_on_critical: bool = False
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True

    pagerduty_routing_key: SecretStr | None = None
    pagerduty_events_url: str = PAGERDUTY_URL
    teams_webhook_url: SecretStr | None = None
    teams_webhook_url_critical: SecretStr | None = None
    teams_webhook_url_high: SecretStr | None = None
    teams_webhook_url_medium: SecretStr | None = None
    teams_webhook_url_low: SecretStr | None = None
    # How often pending deliveries (Jira, email, PagerDuty, Teams) are looked for and retried.
    delivery_interval: Duration = timedelta(seconds=15)

    # How long an incident may stay unacknowledged before its thread gets a reminder (and
    # PagerDuty a page); the reminder repeats every such interval, at most
    # ESCALATION_REPEATS times. `off` for a severity never reminds.
    escalate_after_critical: OptionalDuration = timedelta(minutes=5)
    escalate_after_high: OptionalDuration = timedelta(minutes=15)
    escalate_after_medium: OptionalDuration = None
    escalate_after_low: OptionalDuration = None
    escalation_repeats: int = Field(default=3, ge=1, le=20)
    # How often the store is searched for incidents due a reminder.
    escalation_interval: Duration = timedelta(seconds=30)
    oncall_mention: str | None = None
    digest_at: ClockTime = None
    digest_tz: str = "UTC"
    runbooks_file: Path | None = None

    # The region of every boto3 client the bot creates, passed as `region_name`: AWS_REGION,
    # else AWS_DEFAULT_REGION (botocore itself reads only the latter); None leaves botocore
    # to its own resolution (AWS_DEFAULT_REGION, the profile's region).
    aws_region: Annotated[str | None, BeforeValidator(blank_is_unset)] = Field(
        default=None, validation_alias=AliasChoices("aws_region", "aws_default_region")
    )
    store: Literal["sqlite", "dynamodb"] = "sqlite"
    sqlite_path: Path = Path("./incidents.db")
    dynamodb_table_prefix: str = "incident-responder"
    retention: Duration = timedelta(days=365)
    # How long a replica's claim on shared work (a root post, an analysis, a scheduled pass)
    # outlives the replica: the longest a killed replica's work waits to be taken over.
    replica_lease: Duration = timedelta(seconds=30)

    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8080, ge=0, le=65535)
    webhook_api_key: SecretStr | None = None
    # MCP (docs/mcp.md): the Bearer token that turns on Streamable HTTP at /mcp on the
    # receiver, and whether the acknowledge, resolve and silence tools exist at all.
    mcp_token: SecretStr | None = None
    mcp_allow_writes: bool = False

    anthropic_api_key: SecretStr | None = None
    analysis_model: str = "claude-sonnet-4-6"
    analysis_model_fast: str = "claude-haiku-4-5"
    analysis_cache_ttl: Duration = timedelta(hours=24)
    analysis_timeout: Duration = timedelta(seconds=60)
    analysis_max_retries: int = Field(default=2, ge=0, le=10)
    analysis_prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    analysis_concurrency: int = Field(default=4, ge=1, le=64)
    context_timeout: Duration = timedelta(seconds=3)
    redact_ips: bool = False
    # The investigation loop for CRITICAL and HIGH (docs/investigation.md): requests per
    # investigation, each tool call's time, each result's size, and the budget of one.
    investigation_max_steps: int = Field(default=8, ge=1, le=40)
    investigation_tool_timeout: Duration = timedelta(seconds=10)
    investigation_result_chars: int = Field(default=8000, ge=500, le=100_000)
    investigation_max_tokens: int = Field(default=200_000, ge=1000)
    investigation_max_cost: float = Field(default=0.10, gt=0)
    # Its built-in read-only AWS tools: on or off, the log groups they may read beyond the
    # alert's own (names, or `prefix*`), and the widest time range one call may cover.
    investigation_aws_tools: bool = True
    investigation_log_groups: Names = Field(default_factory=list)
    investigation_max_window: Duration = Field(default=timedelta(hours=6), gt=timedelta(0))
    # The team's MCP servers whose allow-listed tools the investigation may call.
    mcp_servers_file: Path | None = None
    _mcp_servers: tuple[McpServer, ...] = PrivateAttr(default=())

    alert_queue_url: str | None = None
    sqs_pollers: int = Field(default=2, ge=1, le=32)
    sqs_max_in_flight: int = Field(default=50, ge=1, le=10_000)
    sqs_visibility_timeout: int = Field(default=20, ge=1, le=43_200)
    sqs_wait_seconds: int = Field(default=20, ge=0, le=20)

    reopen_window: Duration = timedelta(hours=1)
    flap_threshold: int = Field(default=3, ge=2)
    flap_window: Duration = timedelta(hours=1)
    update_interval: Duration = timedelta(seconds=10)
    # Group commit: how long an idle receiver waits for company before writing a payload,
    # and how many alerts may wait to be written before senders are told to retry (429).
    group_commit_window: Duration = timedelta(milliseconds=2)
    ingest_backlog: int = Field(default=10_000, ge=100, le=1_000_000)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _prices_cover_defaults(self) -> Settings:
        """A partial `ANALYSIS_PRICES` overrides the models it names and keeps the rest."""
        self.analysis_prices = {**DEFAULT_PRICES, **self.analysis_prices}
        return self

    @model_validator(mode="after")
    def _priorities_cover_defaults(self) -> Settings:
        self.jira_priorities = {**DEFAULT_PRIORITIES, **self.jira_priorities}
        return self

    @model_validator(mode="after")
    def _email_has_a_transport(self) -> Settings:
        if self.email_from and self.email_transport == "smtp" and not self.smtp_host:
            raise ValueError("EMAIL_TRANSPORT=smtp needs SMTP_HOST (or set EMAIL_TRANSPORT=ses)")
        if self.smtp_user and not self.smtp_starttls:
            raise ValueError(
                "SMTP_USER is set with SMTP_STARTTLS=false: the password would cross the "
                "network in clear; enable STARTTLS"
            )
        return self

    @model_validator(mode="after")
    def _aws_has_a_region(self) -> Settings:
        """Without a region, boto3 stops at the first client it makes with a NoRegionError
        traceback; what talks to AWS says what to set here instead, in one line."""
        needs = [
            name
            for name, wanted in (
                ("STORE=dynamodb", self.store == "dynamodb"),
                ("ALERT_QUEUE_URL", bool(self.alert_queue_url)),
                ("EMAIL_TRANSPORT=ses", self.email_enabled and self.email_transport == "ses"),
            )
            if wanted
        ]
        if needs and self.aws_region is None and botocore_region() is None:
            verb = "needs" if len(needs) == 1 else "need"
            raise ValueError(
                f"{' and '.join(needs)} {verb} an AWS region: "
                "set AWS_REGION (or AWS_DEFAULT_REGION)"
            )
        return self

    @model_validator(mode="after")
    def _oncall_is_a_slack_id(self) -> Settings:
        """A user (`U…`, `W…`) or user group (`S…`) id, as Slack's profile menus copy it;
        a display name would render as plain text and page nobody."""
        if self.oncall_mention is not None:
            mention = self.oncall_mention.strip()
            if not _MENTION.match(mention):
                raise ValueError(
                    f"ONCALL_MENTION={mention!r} is not a Slack user id (U…) or user group "
                    "id (S…): copy it from the profile or the group's menu"
                )
            self.oncall_mention = mention
        return self

    @model_validator(mode="after")
    def _digest_zone_exists(self) -> Settings:
        try:
            ZoneInfo(self.digest_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"DIGEST_TZ={self.digest_tz!r} is not a timezone such as UTC or Europe/Paris"
            ) from None
        return self

    @model_validator(mode="after")
    def _runbooks_load(self) -> Settings:
        """Read once here so that a typo in the file stops start-up, not the first alert."""
        try:
            load_runbooks(self.runbooks_file)
        except RunbookError as exc:
            raise ValueError(f"RUNBOOKS_FILE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _mcp_servers_load(self) -> Settings:
        """Read once here, like the runbooks: a typo or an unset `${VAR}` stops start-up; and
        kept (`mcp_servers`), so the investigation and `doctor` use what was checked."""
        try:
            self._mcp_servers = tuple(load_servers(self.mcp_servers_file))
        except McpServersError as exc:
            raise ValueError(f"MCP_SERVERS_FILE: {exc}") from None
        return self

    @model_validator(mode="after")
    def _receiver_is_protected(self) -> Settings:
        if self.webhook_api_key is None and not is_loopback(self.webhook_host):
            raise ValueError(
                f"WEBHOOK_HOST={self.webhook_host} exposes the receiver beyond this machine: "
                "set WEBHOOK_API_KEY, or bind to 127.0.0.1"
            )
        return self

    @model_validator(mode="after")
    def _mcp_token_is_long(self) -> Settings:
        """A short token can be guessed; the one the docs suggest is 43 characters."""
        if self.mcp_token is not None and len(self.mcp_token.get_secret_value()) < MCP_TOKEN_MIN:
            raise ValueError(
                f"MCP_TOKEN is shorter than {MCP_TOKEN_MIN} characters: make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @model_validator(mode="after")
    def _slack_has_a_channel(self) -> Settings:
        if not self.console_mode and not self.slack_channel:
            raise ValueError("SLACK_CHANNEL is required when the Slack tokens are set")
        return self

    @property
    def console_mode(self) -> bool:
        """Without both Slack tokens, incidents print to the terminal instead."""
        return self.slack_bot_token is None or self.slack_app_token is None

    def channel_for(self, severity: Severity) -> str:
        """`SLACK_CHANNEL_<SEVERITY>` when set, else `SLACK_CHANNEL`."""
        routed = {
            Severity.CRITICAL: self.slack_channel_critical,
            Severity.HIGH: self.slack_channel_high,
            Severity.MEDIUM: self.slack_channel_medium,
            Severity.LOW: self.slack_channel_low,
        }[severity]
        return routed or self.slack_channel or ""

    def escalate_after(self, severity: Severity) -> timedelta | None:
        """`ESCALATE_AFTER_<SEVERITY>`; None when that severity never escalates."""
        return {
            Severity.CRITICAL: self.escalate_after_critical,
            Severity.HIGH: self.escalate_after_high,
            Severity.MEDIUM: self.escalate_after_medium,
            Severity.LOW: self.escalate_after_low,
        }[severity]

    @property
    def mcp_servers(self) -> tuple[McpServer, ...]:
        """The team MCP servers of `MCP_SERVERS_FILE`, as read when the settings loaded."""
        return self._mcp_servers

    @property
    def jira_enabled(self) -> bool:
        return bool(self.jira_url and self.jira_email and self.jira_project and self.jira_api_token)

    @property
    def email_enabled(self) -> bool:
        """`EMAIL_TO` prefills the modal and receives automatic mail, so both are needed."""
        return bool(self.email_from and self.email_to)

    @property
    def email_recipients(self) -> list[str]:
        return split_addresses(self.email_to or "")

    @property
    def pagerduty_enabled(self) -> bool:
        return self.pagerduty_routing_key is not None

    def teams_webhook_for(self, severity: Severity) -> str | None:
        """`TEAMS_WEBHOOK_URL_<SEVERITY>` when set, else `TEAMS_WEBHOOK_URL`; None when off."""
        routed = {
            Severity.CRITICAL: self.teams_webhook_url_critical,
            Severity.HIGH: self.teams_webhook_url_high,
            Severity.MEDIUM: self.teams_webhook_url_medium,
            Severity.LOW: self.teams_webhook_url_low,
        }[severity]
        chosen = routed or self.teams_webhook_url
        return chosen.get_secret_value() if chosen else None

    @property
    def teams_enabled(self) -> bool:
        return any(self.teams_webhook_for(severity) for severity in Severity)


class SettingsError(Exception):
    """Start-up configuration is invalid; the message is one line per bad variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            if name and "is not a duration" not in message:
                message = f"{message} (got {error['input']!r})"
            lines.append(f"{name}: {message}" if name else message)
        raise SettingsError("; ".join(lines)) from None
