"""Settings: contract names, defaults, durations, and one clear line for a bad value."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings, parse_duration, parse_rate
from incidents.models import Severity

CONTRACT_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_CHANNEL",
    "SLACK_CHANNEL_CRITICAL",
    "SLACK_API_URL",
    "STORE",
    "SQLITE_PATH",
    "WEBHOOK_HOST",
    "WEBHOOK_PORT",
    "WEBHOOK_API_KEY",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "JIRA_LABELS",
    "JIRA_PRIORITIES",
    "EMAIL_FROM",
    "EMAIL_TO",
    "EMAIL_TRANSPORT",
    "SMTP_HOST",
    "SMTP_USER",
    "SMTP_STARTTLS",
    "TEAMS_WEBHOOK_URL",
    "TEAMS_WEBHOOK_URL_CRITICAL",
    "ESCALATE_AFTER_CRITICAL",
    "ESCALATE_AFTER_HIGH",
    "ESCALATE_AFTER_MEDIUM",
    "ONCALL_MENTION",
    "DIGEST_AT",
    "DIGEST_TZ",
    "RUNBOOKS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "SLACK_POST_RATE",
    "SLACK_UPDATE_RATE",
    "MCP_TOKEN",
    "MCP_ALLOW_WRITES",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CONTRACT_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_embedded_defaults_need_no_configuration():
    settings = Settings()

    assert settings.store == "sqlite"
    assert settings.sqlite_path == Path("./incidents.db")
    assert (settings.webhook_host, settings.webhook_port) == ("127.0.0.1", 8080)
    assert settings.console_mode is True
    assert settings.update_interval == timedelta(seconds=10)
    assert settings.slack_post_rate == 1.0, "Slack's chat.postMessage: 1 per second per channel"
    assert settings.slack_update_rate * 60 == pytest.approx(50), "chat.update, Tier 3: 50/min"
    assert settings.mcp_token is None and settings.mcp_allow_writes is False, "MCP HTTP off"
    assert settings.investigation_max_steps == 8
    assert settings.investigation_tool_timeout == timedelta(seconds=10)
    assert settings.investigation_result_chars == 8000
    assert (settings.investigation_max_tokens, settings.investigation_max_cost) == (200_000, 0.10)


def test_values_come_from_the_contract_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_PORT", "9123")
    monkeypatch.setenv("WEBHOOK_HOST", "0.0.0.0")
    monkeypatch.setenv("WEBHOOK_API_KEY", "s3cret")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("SLACK_CHANNEL", "C0ALL")
    monkeypatch.setenv("FLAP_WINDOW", "15m")

    settings = load_settings()

    assert settings.webhook_port == 9123
    assert settings.webhook_api_key is not None
    assert settings.webhook_api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.console_mode is False
    assert settings.flap_window == timedelta(minutes=15)


def test_an_exposed_receiver_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WEBHOOK_HOST", "0.0.0.0")

    with pytest.raises(SettingsError, match="WEBHOOK_HOST=0.0.0.0 .* set WEBHOOK_API_KEY"):
        load_settings()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost"])
def test_loopback_hosts_need_no_key(monkeypatch: pytest.MonkeyPatch, host: str):
    monkeypatch.setenv("WEBHOOK_HOST", host)
    assert load_settings().webhook_host == host


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("WEBHOOK_PORT", "eighty", "WEBHOOK_PORT"),
        ("STORE", "postgres", "STORE"),
        ("FLAP_WINDOW", "soon", "FLAP_WINDOW: 'soon' is not a duration"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("ESCALATE_AFTER_HIGH", "soon", "ESCALATE_AFTER_HIGH: 'soon' is not a duration"),
        ("ONCALL_MENTION", "@oncall", "is not a Slack user id (U…) or user group id (S…)"),
        ("DIGEST_AT", "25:00", "DIGEST_AT: not a time of day such as 09:00 (got '25:00')"),
        ("DIGEST_TZ", "Mars/Olympus", "DIGEST_TZ='Mars/Olympus' is not a timezone"),
        ("RUNBOOKS_FILE", "absent.yaml", "RUNBOOKS_FILE: cannot read absent.yaml"),
        ("SLACK_UPDATE_RATE", "fast", "SLACK_UPDATE_RATE: not a rate such as 1/s or 50/m"),
        ("SLACK_POST_RATE", "0/s", "SLACK_POST_RATE: not a positive rate such as 1/s"),
        ("MCP_TOKEN", "short", "MCP_TOKEN is shorter than 24 characters"),
        ("MCP_ALLOW_WRITES", "maybe", "MCP_ALLOW_WRITES"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("45", 45)]
)
def test_durations(text: str, seconds: int):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("1/s", 1.0), ("50/m", 50 / 60), ("50/min", 50 / 60), ("100/10s", 10.0), ("2", 2.0)],
)
def test_rates_read_as_slack_writes_them(text: str, per_second: float):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["fast", "0/s", "-1/s", "1/0s", "1/fortnight", "nan"])
def test_a_rate_that_is_not_one_is_refused(text: str):
    with pytest.raises(ValueError, match="rate such as 1/s or 50/m"):
        parse_rate(text)


def test_slack_needs_a_channel_and_routes_by_severity(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    with pytest.raises(SettingsError, match="SLACK_CHANNEL is required"):
        load_settings()

    monkeypatch.setenv("SLACK_CHANNEL", "C0ALL")
    monkeypatch.setenv("SLACK_CHANNEL_CRITICAL", "C0PAGE")
    settings = load_settings()

    assert settings.channel_for(Severity.CRITICAL) == "C0PAGE"
    assert settings.channel_for(Severity.LOW) == "C0ALL"
    assert settings.slack_api_url == "https://slack.com/api/"


def test_channel_settings_read_as_people_write_them(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JIRA_LABELS", "incident, aws")
    monkeypatch.setenv("JIRA_PRIORITIES", '{"LOW": "Lowest"}')
    monkeypatch.setenv("EMAIL_FROM", "bot@example.com")
    monkeypatch.setenv("EMAIL_TO", "ann@example.com; lead@example.com")
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "https://teams.example/all")
    monkeypatch.setenv("TEAMS_WEBHOOK_URL_CRITICAL", "https://teams.example/critical")

    settings = load_settings()

    assert settings.jira_labels == ["incident", "aws"]
    assert settings.jira_priorities[Severity.LOW] == "Lowest"
    assert settings.jira_priorities[Severity.CRITICAL] == "Highest", "the rest keep defaults"
    assert settings.email_recipients == ["ann@example.com", "lead@example.com"]
    assert settings.teams_webhook_for(Severity.CRITICAL) == "https://teams.example/critical"
    assert settings.teams_webhook_for(Severity.LOW) == "https://teams.example/all"
    assert load_settings(jira_labels='["a", "b"]').jira_labels == ["a", "b"]


def test_email_without_a_way_to_send_stops_start_up(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EMAIL_FROM", "bot@example.com")
    with pytest.raises(SettingsError, match="EMAIL_TRANSPORT=smtp needs SMTP_HOST"):
        load_settings()
    assert load_settings(email_transport="ses").email_transport == "ses"

    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SMTP_USER", "bot")
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    with pytest.raises(SettingsError, match="password would cross the network in clear"):
        load_settings()


def test_the_aws_region_is_aws_region_else_aws_default_region(monkeypatch: pytest.MonkeyPatch):
    assert Settings().aws_region is None
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert load_settings().aws_region == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert load_settings().aws_region == "eu-central-1", "AWS_REGION first, as boto3's docs say"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", " ")
    assert load_settings().aws_region is None, "blank is unset, not a region named ''"


def test_what_talks_to_aws_without_a_region_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    hint = r"an AWS region: set AWS_REGION \(or AWS_DEFAULT_REGION\)$"
    with pytest.raises(SettingsError, match=rf"^STORE=dynamodb needs {hint}"):
        load_settings(store="dynamodb")
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/alerts"
    with pytest.raises(SettingsError, match=rf"^STORE=dynamodb and ALERT_QUEUE_URL need {hint}"):
        load_settings(store="dynamodb", alert_queue_url=queue)
    with pytest.raises(SettingsError, match=rf"^EMAIL_TRANSPORT=ses needs {hint}"):
        load_settings(email_from="bot@example.com", email_to="a@example.com", email_transport="ses")
    assert load_settings(store="dynamodb", aws_region="eu-west-1").aws_region == "eu-west-1"

    # botocore reads a profile's region itself, so that is enough too.
    config = tmp_path / "aws-config"
    config.write_text("[profile ops]\nregion = eu-north-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "ops")
    assert load_settings(store="dynamodb").store == "dynamodb"
    monkeypatch.setenv("AWS_PROFILE", "opps")
    with pytest.raises(SettingsError, match=r"^AWS_PROFILE: The config profile \(opps\)"):
        load_settings(store="dynamodb")


def test_escalation_defaults_follow_the_contract_and_off_switches_a_severity(
    monkeypatch: pytest.MonkeyPatch,
):
    defaults = Settings()
    assert defaults.escalate_after(Severity.CRITICAL) == timedelta(minutes=5)
    assert defaults.escalate_after(Severity.HIGH) == timedelta(minutes=15)
    assert defaults.escalate_after(Severity.MEDIUM) is None
    assert defaults.escalate_after(Severity.LOW) is None
    assert (defaults.oncall_mention, defaults.digest_at, defaults.digest_tz) == (None, None, "UTC")

    monkeypatch.setenv("ESCALATE_AFTER_CRITICAL", "off")
    monkeypatch.setenv("ESCALATE_AFTER_MEDIUM", "1h")
    monkeypatch.setenv("ONCALL_MENTION", " S0ONCALL ")
    monkeypatch.setenv("DIGEST_AT", "9:30")
    monkeypatch.setenv("DIGEST_TZ", "Europe/Paris")
    settings = load_settings()
    assert settings.escalate_after(Severity.CRITICAL) is None
    assert settings.escalate_after(Severity.MEDIUM) == timedelta(hours=1)
    assert settings.oncall_mention == "S0ONCALL"
    assert (settings.digest_at.hour, settings.digest_at.minute) == (9, 30)  # type: ignore[union-attr]
