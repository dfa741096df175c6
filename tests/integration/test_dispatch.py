"""The notification policy over real channels: a SQLite store and lifecycle, the PagerDuty
Events fake and the Teams webhook fake, driven through `Notifier` as the bot drives it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from incidents.leases import Leases
from incidents.lifecycle import IncidentService
from incidents.models import Delivery, DeliveryStatus, Incident, Severity
from incidents.sqlite import SqliteStore
from incidents.store import AnalysisRecord
from notify.dispatch import Channels, Notifier
from notify.email_transport import SmtpTransport
from notify.pagerduty import PagerDutyEvents
from notify.teams import TeamsWebhook
from tests.conftest import ManualClock, make_alert
from tests.fakes.pagerduty_server import ROUTING_KEY, PagerDutyFake
from tests.fakes.smtp_sink import SmtpSink
from tests.fakes.teams_server import TeamsFake
from tests.integration.test_jira import ANALYSIS

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    notifier: Notifier
    pagerduty: PagerDutyFake
    teams: TeamsFake
    failed: list[Delivery]
    sent: list[Delivery]


@pytest.fixture
async def rig(store: SqliteStore, clock: ManualClock) -> AsyncIterator[Rig]:
    async with PagerDutyFake() as pagerduty, TeamsFake() as teams:
        events = PagerDutyEvents(ROUTING_KEY, pagerduty.events_url, backoff=0, timeout=5)
        webhook = TeamsWebhook(backoff=0, timeout=5)
        routes = {Severity.CRITICAL: teams.url_for("critical"), Severity.HIGH: teams.url_for("ops")}
        channels = Channels(
            pagerduty=events,
            teams=webhook,
            teams_route=routes.get,
            closers=[events.close, webhook.close],
        )
        failed: list[Delivery] = []
        sent: list[Delivery] = []

        async def on_failed(delivery: Delivery) -> None:
            failed.append(delivery)

        async def on_sent(delivery: Delivery) -> None:
            sent.append(delivery)

        notifier = Notifier(
            store, Leases(store, timedelta(minutes=1), clock=clock), channels,
            on_failed=on_failed, on_sent=on_sent, clock=clock,
        )  # fmt: skip
        yield Rig(notifier, pagerduty, teams, failed, sent)
        await notifier.close()


def _open(store: SqliteStore, service: IncidentService, severity: Severity) -> Incident:
    """An incident with its analysis stored, as the engine leaves it before `analysed`."""
    incident = service.record(make_alert(severity=severity)).incident
    assert incident is not None
    store.put_analysis(
        AnalysisRecord(
            incident_id=incident.id, fingerprint=incident.fingerprint, source=incident.source,
            prompt_version="v1", created_at=ANALYSIS.created_at, analyzer="offline", model=None,
            cached=False, cost_usd=0.0, body=ANALYSIS.model_dump_json(),
        )
    )  # fmt: skip
    return incident


async def test_a_critical_incident_pages_once_and_mirrors_ack_and_resolve(
    rig: Rig, store: SqliteStore, service: IncidentService
):
    incident = _open(store, service, Severity.CRITICAL)
    await rig.notifier.opened(incident)
    await rig.notifier.opened(incident)
    await rig.notifier.analysed(incident, ANALYSIS)
    await rig.notifier.acknowledged(service.acknowledge(incident.id, "U1"), "U1")
    await rig.notifier.resolved(service.resolve(incident.id, "U1"), "U1")

    actions = [(e["event_action"], e["dedup_key"]) for e in rig.pagerduty.events]
    assert actions == [("trigger", incident.id), ("acknowledge", incident.id),
                       ("resolve", incident.id)]  # fmt: skip
    [card, resolved] = rig.teams.posts["critical"]
    assert "Root cause" in str(card) and "Resolved" in str(resolved)
    listed = {(d.target, d.action, d.status) for d in store.deliveries(incident.id)}
    assert listed == {
        ("pagerduty", "trigger", DeliveryStatus.SENT),
        ("pagerduty", "acknowledge", DeliveryStatus.SENT),
        ("pagerduty", "resolve", DeliveryStatus.SENT),
        ("teams", "analysis", DeliveryStatus.SENT),
        ("teams", "resolved", DeliveryStatus.SENT),
    }
    assert [d.action for d in rig.sent if d.target == "pagerduty"][0] == "trigger"


async def test_a_high_incident_pages_nobody_and_its_card_goes_to_its_route(
    rig: Rig, store: SqliteStore, service: IncidentService
):
    incident = _open(store, service, Severity.HIGH)
    await rig.notifier.opened(incident)
    await rig.notifier.analysed(incident, ANALYSIS)
    await rig.notifier.acknowledged(service.acknowledge(incident.id, "U1"), "U1")
    await rig.notifier.resolved(service.resolve(incident.id, "U1"), "U1")

    assert rig.pagerduty.events == [], "neither paged nor told of an ack for a page never sent"
    assert len(rig.teams.posts["ops"]) == 2 and "critical" not in rig.teams.posts


async def test_a_reopened_incident_pages_again(
    rig: Rig, store: SqliteStore, service: IncidentService, clock
):
    incident = _open(store, service, Severity.CRITICAL)
    await rig.notifier.opened(incident)
    await rig.notifier.resolved(service.resolve(incident.id, "U1"), "U1")
    clock.advance(minutes=5)
    reopened = service.record(make_alert(severity=Severity.CRITICAL)).incident
    assert reopened is not None and reopened.id == incident.id and reopened.reopen_count == 1
    await rig.notifier.opened(reopened)

    actions = [e["event_action"] for e in rig.pagerduty.events]
    assert actions == ["trigger", "resolve", "trigger"]


async def test_an_outage_is_retried_by_the_outbox_and_a_refusal_is_told(
    rig: Rig, store: SqliteStore, service: IncidentService, clock
):
    incident = _open(store, service, Severity.CRITICAL)
    rig.pagerduty.fail_next(503, count=2)
    await rig.notifier.opened(incident)
    [pending] = store.deliveries(incident.id)
    assert pending.status is DeliveryStatus.PENDING and "503" in (pending.last_error or "")
    clock.advance(minutes=1)
    assert await rig.notifier.outbox.run_due() == 1
    assert [e["event_action"] for e in rig.pagerduty.events] == ["trigger"]

    rig.teams.fail_next(400)
    await rig.notifier.analysed(incident, ANALYSIS)
    [refused] = rig.failed
    assert refused.target == "teams" and refused.status is DeliveryStatus.FAILED
    assert "400" in (refused.last_error or "")


async def test_a_critical_incident_is_mailed_once_when_email_on_critical_is_set(
    store: SqliteStore, service: IncidentService, clock: ManualClock
):
    with SmtpSink() as sink:
        smtp = SmtpTransport(sink.host, sink.port, sink.user, sink.password,
                             ssl_context=sink.ssl_context(), timeout=5)  # fmt: skip
        channels = Channels(email=smtp, email_from="bot@example.com",
                            email_to=["oncall@example.com"], email_on_critical=True)  # fmt: skip
        notifier = Notifier(store, Leases(store, timedelta(minutes=1), clock=clock), channels,
                            clock=clock)  # fmt: skip
        critical = _open(store, service, Severity.CRITICAL)
        await notifier.analysed(critical, ANALYSIS)
        await notifier.analysed(critical, ANALYSIS)
        high = service.record(make_alert("Disk full", severity=Severity.HIGH, problem="disk"))
        assert high.incident is not None
        await notifier.analysed(high.incident, ANALYSIS)

    [mail] = sink.messages
    assert mail.recipients == ["oncall@example.com"]
    assert critical.id in str(mail.message["Subject"])
    [delivery] = store.deliveries(critical.id)
    assert (delivery.action, delivery.status) == ("auto", DeliveryStatus.SENT)
