"""The PagerDuty Events v2 events the bot builds: what the on-call phone shows, what
PagerDuty's rules can route on, and that the routing key is never part of what is built."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from analysis.models import Analysis, AnalyzerKind, RemediationStep
from incidents.models import Incident, Severity
from notify.pagerduty import SEVERITIES, SUMMARY_LIMIT, follow_up_event, trigger_event
from tests import samples
from tests.conftest import T0
from tests.samples import PERMALINK


def make_incident(**changes: Any) -> Incident:
    return samples.make_incident(**{"id": "INC-7K2M9QXA", "severity": Severity.CRITICAL, **changes})


def make_analysis(steps: int = 4) -> Analysis:
    return Analysis(
        root_cause="The orders database hit max_connections.",
        severity=Severity.CRITICAL,
        severity_justification="Checkout fails for every user.",
        impact="All checkouts fail.",
        remediation_steps=[
            RemediationStep(action=f"Step {n}", command=f"run {n}") for n in range(1, steps + 1)
        ],
        confidence=0.8123,
        analyzer=AnalyzerKind.OFFLINE,
        prompt_version="v1",
        fingerprint="fp",
        created_at=T0,
    )


def test_every_severity_maps_to_one_of_pagerdutys_four() -> None:
    assert dict(SEVERITIES) == {
        Severity.CRITICAL: "critical",
        Severity.HIGH: "error",
        Severity.MEDIUM: "warning",
        Severity.LOW: "info",
    }
    for severity in Severity:
        payload = trigger_event(make_incident(severity=severity), None, None)["payload"]
        assert payload["severity"] == SEVERITIES[severity]
        assert payload["summary"].startswith(f"[{severity}] ")


def test_the_trigger_carries_the_incident_id_as_dedup_key_and_never_a_routing_key() -> None:
    event = trigger_event(make_incident(), make_analysis(), PERMALINK)

    assert event["event_action"] == "trigger" and event["dedup_key"] == "INC-7K2M9QXA"
    assert "routing_key" not in event, "the client adds the secret only when sending"
    payload = event["payload"]
    assert payload["summary"] == "[CRITICAL] Database connection failed"
    assert (payload["source"], payload["group"], payload["class"]) == (
        "db-prod-1",
        "cloudwatch",
        "Database connection failed",
    )
    assert "component" not in payload
    assert datetime.fromisoformat(payload["timestamp"]) == T0
    assert event["client"] == "incident-responder"


def test_the_source_falls_back_to_the_alert_source_without_a_resource() -> None:
    payload = trigger_event(make_incident(resource=None), None, None)["payload"]
    assert payload["source"] == "cloudwatch"


def test_the_summary_is_one_line_cut_to_pagerdutys_limit() -> None:
    title = "Disk\nfull\t on   host " + "x" * 2000
    summary = trigger_event(make_incident(title=title), None, None)["payload"]["summary"]

    assert len(summary) == SUMMARY_LIMIT and summary.endswith("…")
    assert summary.startswith("[CRITICAL] Disk full on host xxx")
    assert "\n" not in summary and "\t" not in summary


def test_custom_details_carry_the_facts_and_the_gist_of_the_analysis() -> None:
    details = trigger_event(make_incident(), make_analysis(steps=5), None)["payload"][
        "custom_details"
    ]

    assert details["incident_id"] == "INC-7K2M9QXA" and details["occurrences"] == 51
    assert datetime.fromisoformat(details["first_seen"]) == T0
    assert datetime.fromisoformat(details["last_seen"]) == T0 + timedelta(minutes=7)
    assert details["root_cause"] == "The orders database hit max_connections."
    assert details["impact"] == "All checkouts fail."
    assert details["first_steps"] == ["1. Step 1", "2. Step 2", "3. Step 3"]
    assert details["confidence"] == 0.81


def test_without_analysis_the_details_hold_only_the_facts() -> None:
    details = trigger_event(make_incident(), None, None)["payload"]["custom_details"]
    assert "root_cause" not in details and "first_steps" not in details
    assert details["incident_id"] == "INC-7K2M9QXA"


@pytest.mark.parametrize(
    "permalink", [None, "", "http://example.slack.com/x", "javascript:alert(1)", "https://"]
)
def test_only_an_https_permalink_becomes_a_link(permalink: str | None) -> None:
    event = trigger_event(make_incident(), None, permalink)
    assert "links" not in event and "client_url" not in event


def test_an_https_permalink_is_the_link_and_the_client_url() -> None:
    event = trigger_event(make_incident(), None, PERMALINK)
    assert event["links"] == [{"href": PERMALINK, "text": "Incident in Slack"}]
    assert event["client_url"] == PERMALINK


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_follow_ups_carry_only_the_action_and_the_key(action: str) -> None:
    assert follow_up_event(action, "INC-1") == {"event_action": action, "dedup_key": "INC-1"}
