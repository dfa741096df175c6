"""Which reminder round is due, and what the reminder says: pure functions, so the table of
cases is the whole specification."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blocks.thread import escalation_reminder
from incidents.escalation import EscalationPolicy, escalation_nonce, waiting_since
from incidents.models import IncidentStatus, Severity
from tests.conftest import T0
from tests.samples import make_incident

POLICY = EscalationPolicy(
    {Severity.CRITICAL: timedelta(minutes=5), Severity.HIGH: timedelta(minutes=15),
     Severity.MEDIUM: None, Severity.LOW: None},
    repeats=3,
)  # fmt: skip


@pytest.mark.parametrize(
    ("severity", "waited", "expected"),
    [
        (Severity.CRITICAL, timedelta(minutes=4, seconds=59), 0),
        (Severity.CRITICAL, timedelta(minutes=5), 1),
        (Severity.CRITICAL, timedelta(minutes=9, seconds=59), 1),
        (Severity.CRITICAL, timedelta(minutes=10), 2),
        (Severity.CRITICAL, timedelta(hours=6), 3),
        (Severity.HIGH, timedelta(minutes=14), 0),
        (Severity.HIGH, timedelta(minutes=31), 2),
        (Severity.MEDIUM, timedelta(days=3), 0),
        (Severity.LOW, timedelta(days=3), 0),
    ],
)
def test_the_due_round_counts_whole_delays_up_to_the_repeats(severity, waited, expected):
    incident = make_incident(severity=severity, opened_at=T0)
    assert POLICY.due_round(incident, T0 + waited) == expected


@pytest.mark.parametrize("status", [IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED])
def test_an_owned_or_resolved_incident_is_never_due(status):
    incident = make_incident(severity=Severity.CRITICAL, opened_at=T0, status=status)
    assert POLICY.due_round(incident, T0 + timedelta(hours=1)) == 0


def test_a_reopening_restarts_the_wait_and_names_a_new_round():
    reopened_at = T0 + timedelta(hours=2)
    incident = make_incident(
        severity=Severity.CRITICAL, opened_at=T0, reopen_count=1, recent_reopens=[reopened_at]
    )
    assert waiting_since(incident) == reopened_at
    assert POLICY.due_round(incident, reopened_at + timedelta(minutes=4)) == 0
    assert POLICY.due_round(incident, reopened_at + timedelta(minutes=5)) == 1
    assert escalation_nonce(incident, 1) == "1-1"
    assert escalation_nonce(make_incident(), 1) == "0-1"


def test_a_policy_with_every_severity_off_is_disabled():
    assert POLICY.enabled
    assert not EscalationPolicy(dict.fromkeys(Severity)).enabled


@pytest.mark.parametrize(
    ("mention", "shown"),
    [("S0ONCALL", "<!subteam^S0ONCALL>"), ("U024BE7LH", "<@U024BE7LH>"), (None, None)],
)
def test_the_reminder_mentions_the_on_call_user_or_group(mention, shown):
    incident = make_incident(severity=Severity.HIGH)
    message = escalation_reminder(incident, 1, 3, timedelta(minutes=15), mention)
    assert incident.id in message.text and "15m" in message.text
    assert "reminder 1 of 3" in message.text and "last reminder" not in message.text
    if shown:
        assert message.text.startswith(f":alarm_clock: {shown} ")
    else:
        assert "<" not in message.text


def test_the_reminder_escapes_the_alert_title_and_says_when_it_is_the_last():
    incident = make_incident(title="<!channel> disk <https://evil.example|full>")
    message = escalation_reminder(incident, 3, 3, timedelta(minutes=45), "S0ONCALL")
    assert "<!channel>" not in message.text and "<https://evil" not in message.text
    assert "&lt;!channel&gt;" in message.text
    assert "This is the last reminder." in message.text
