"""One incident and one analysis that the channel tests (Jira, email, PagerDuty, Teams)
build on, each overriding what it is about: a change to the shape of an incident is then
made once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from analysis.models import Analysis, AnalyzerKind, RemediationStep
from incidents.models import Incident, Severity
from tests.conftest import T0

PERMALINK = "https://example.slack.com/archives/C0123/p1732435200000100"


def make_incident(**changes: Any) -> Incident:
    incident = Incident(
        id="INC-7K2M9",
        fingerprint="fp",
        title="Database connection failed",
        source="cloudwatch",
        resource="db-prod-1",
        severity=Severity.HIGH,
        opened_at=T0,
        last_seen_at=T0 + timedelta(minutes=7),
        occurrences=51,
    )
    return incident.model_copy(update=changes)


def make_analysis(**changes: Any) -> Analysis:
    analysis = Analysis(
        root_cause="The orders database hit max_connections: app_user leaks connections.",
        severity=Severity.HIGH,
        severity_justification="Checkout fails for every user.",
        impact="All checkouts fail; the orders API answers 500.",
        remediation_steps=[
            RemediationStep(
                action="List the sessions held by app_user.",
                command="psql -c 'select count(*) from pg_stat_activity'",
            ),
            RemediationStep(action="Restart the leaking orders-api pods."),
            RemediationStep(
                action="Raise the pool limit.", command="kubectl rollout restart deploy/orders-api"
            ),
        ],
        confidence=0.8,
        analyzer=AnalyzerKind.OFFLINE,
        prompt_version="v1",
        fingerprint="fp",
        created_at=T0,
    )
    return analysis.model_copy(update=changes)
