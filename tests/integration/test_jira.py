"""`JiraTickets` through the real `jira` library against a local Jira REST fake: the fields an
issue is created with, the single request it costs, and the reasons Jira's refusals become."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from jira import JIRA

from analysis.models import Analysis
from incidents.models import Incident, Severity, TimelineEvent, TimelineKind
from notify.jira import JiraTickets, Ticket, TicketError
from tests.conftest import T0
from tests.fakes.jira_server import JiraFake
from tests.samples import PERMALINK, make_analysis, make_incident

pytestmark = pytest.mark.integration

ANALYSIS = make_analysis()


def tickets_for(jira: JiraFake, **overrides: Any) -> JiraTickets:
    options: dict[str, Any] = {
        "url": jira.url,
        "email": jira.email,
        "api_token": jira.token,
        "project": "OPS",
        "timeout": 5,
    }
    return JiraTickets(**{**options, **overrides})


async def create(
    tickets: JiraTickets,
    incident: Incident | None = None,
    analysis: Analysis | None = ANALYSIS,
    permalink: str | None = PERMALINK,
) -> Ticket:
    """The library is synchronous: run it in a thread while the fake serves on this loop."""
    return await asyncio.to_thread(tickets.create, incident or make_incident(), analysis, permalink)


async def reason_of(tickets: JiraTickets, **kwargs: Any) -> str:
    with pytest.raises(TicketError) as caught:
        await create(tickets, **kwargs)
    return caught.value.reason


async def test_creates_the_issue_with_analysis_facts_and_permalink_in_one_request() -> None:
    async with JiraFake() as jira:
        tickets = tickets_for(jira)
        assert jira.requests == []  # the client is built on first use, not at construction

        ticket = await create(tickets)

        assert ticket == Ticket(key="OPS-1", url=f"{jira.url}/browse/OPS-1")
        assert jira.requests == [("POST", "/rest/api/2/issue")]
        [fields] = jira.created
        assert fields["project"] == {"key": "OPS"}
        assert fields["issuetype"] == {"name": "Task"}
        assert fields["summary"] == "[HIGH] Database connection failed"
        assert fields["priority"] == {"name": "High"}
        assert fields["labels"] == ["incident"]
        description = fields["description"]
        for text in (
            "h3. Root cause\n\nThe orders database hit max_connections",
            "h3. Impact\n\nAll checkouts fail",
            "1. List the sessions held by app_user.\n\n"
            "{code}\npsql -c 'select count(*) from pg_stat_activity'\n{code}",
            "2. Restart the leaking orders-api pods.\n\n3. Raise the pool limit.",
            "{code}\nkubectl rollout restart deploy/orders-api\n{code}",
            "* *Id:* INC-7K2M9",
            "* *Source:* cloudwatch",
            "* *Resource:* db-prod-1",
            "* *First seen:* 2026-11-24T08:00:00+00:00",
            "* *Last seen:* 2026-11-24T08:07:00+00:00",
            "* *Occurrences:* 51",
            f"[Slack thread|{PERMALINK}]",
        ):
            assert text in description

        assert (await create(tickets)).key == "OPS-2"


async def test_priority_follows_severity_and_the_configured_map() -> None:
    async with JiraFake() as jira:
        tickets = tickets_for(jira, issue_type="Incident", labels=("incident", "sev"))
        for severity in Severity:
            await create(tickets, make_incident(severity=severity))
        custom = tickets_for(jira, priorities={Severity.LOW: "Lowest"})
        await create(custom, make_incident(severity=Severity.LOW))
        await create(custom, make_incident(severity=Severity.HIGH))

    priorities = [fields.get("priority") for fields in jira.created]
    assert priorities == [
        {"name": "Highest"},
        {"name": "High"},
        {"name": "Medium"},
        {"name": "Low"},
        {"name": "Lowest"},
        None,  # not in the custom map: Jira's default priority applies
    ]
    assert jira.created[0]["issuetype"] == {"name": "Incident"}
    assert jira.created[0]["labels"] == ["incident", "sev"]
    assert jira.created[0]["summary"] == "[CRITICAL] Database connection failed"


async def test_without_analysis_or_permalink_and_with_a_hostile_title() -> None:
    title = "Disk full on {code}host{code} [link|http://evil]\nsecond line " + "x" * 300
    async with JiraFake() as jira:
        await create(tickets_for(jira), make_incident(title=title), analysis=None, permalink=None)

    [fields] = jira.created
    assert len(fields["summary"]) == 255
    assert fields["summary"].startswith("[HIGH] Disk full on {code}host{code} [link|http://evil]")
    assert fields["summary"].endswith("x…")
    description = fields["description"]
    assert "No analysis is available" in description
    assert "Root cause" not in description and "Slack thread" not in description
    assert "* *Occurrences:* 51" in description


async def test_bad_credentials() -> None:
    async with JiraFake() as jira:
        tickets = tickets_for(jira, api_token="wrong")
        assert await reason_of(tickets) == "Jira refused the credentials (401)"
        assert jira.created == []


async def test_unknown_project() -> None:
    async with JiraFake(projects=("OPS",)) as jira:
        tickets = tickets_for(jira, project="NOPE")
        assert await reason_of(tickets) == "Jira project NOPE does not exist"


async def test_unknown_issue_type() -> None:
    async with JiraFake() as jira:
        tickets = tickets_for(jira, issue_type="Outage")
        assert await reason_of(tickets) == "Jira project OPS has no issue type 'Outage'"


async def test_required_field() -> None:
    async with JiraFake(required={"components": "Component/s"}) as jira:
        assert await reason_of(tickets_for(jira)) == "Jira needs field 'Component/s'"


async def test_other_refusals_carry_jira_own_words() -> None:
    async with JiraFake() as jira:
        tickets = tickets_for(jira, labels=("on call",))
        assert await reason_of(tickets) == (
            "Jira rejected the issue (400): labels: The label 'on call' contains spaces which is "
            "invalid."
        )


async def test_unavailable_after_the_library_retry() -> None:
    async with JiraFake() as jira:
        jira.fail_next(status=503, count=2, retry_after=1)
        started = time.monotonic()
        assert await reason_of(tickets_for(jira)) == "Jira is unavailable (503)"
        assert time.monotonic() - started >= 1  # the library waited before its one retry
        assert jira.requests == [("POST", "/rest/api/2/issue")] * 2
        assert jira.created == []


async def test_one_unavailable_answer_is_retried_and_the_issue_created() -> None:
    async with JiraFake() as jira:
        jira.fail_next(status=503, count=1, retry_after=1)
        assert (await create(tickets_for(jira))).key == "OPS-1"
        assert len(jira.requests) == 2


async def test_server_error_without_retry() -> None:
    async with JiraFake() as jira:
        jira.fail_next(status=500)
        assert await reason_of(tickets_for(jira)) == "Jira is unavailable (500)"
        assert len(jira.requests) == 1


async def test_timeout() -> None:
    async with JiraFake() as jira:
        jira.stall_next(2)
        reason = await reason_of(tickets_for(jira, timeout=0.3))
        assert reason == "Jira did not answer within 0.3 s"


async def test_the_fake_serves_what_the_library_fetches_with_its_defaults() -> None:
    """Server info at construction and the reload after create: the calls JiraTickets avoids."""
    async with JiraFake() as jira:

        def library_defaults() -> tuple[str, str, object]:
            client = JIRA(jira.url, basic_auth=(jira.email, jira.token), max_retries=0)
            fields = JiraTickets(jira.url, "", "", "OPS").fields(make_incident(), None, None)
            issue = client.create_issue(fields=fields)
            return issue.key, issue.fields.summary, client.server_info()["versionNumbers"]

        key, summary, version = await asyncio.to_thread(library_defaults)

    assert (key, summary, version) == ("OPS-1", "[HIGH] Database connection failed", [1001, 0, 0])
    assert jira.requests == [
        ("GET", "/rest/api/2/serverInfo"),
        ("POST", "/rest/api/2/issue"),
        ("GET", "/rest/api/2/issue/OPS-1"),
        ("GET", "/rest/api/2/serverInfo"),
    ]


async def test_timeline_and_components_go_into_the_issue() -> None:
    timeline = [
        TimelineEvent(incident_id="INC-7K2M9", at=T0, actor="system", kind=TimelineKind.OPENED),
        TimelineEvent(
            incident_id="INC-7K2M9", at=T0 + timedelta(minutes=3), actor="U0ANN",
            kind=TimelineKind.ACKNOWLEDGED, detail="looking {code}",
        ),
    ]  # fmt: skip
    async with JiraFake() as jira:
        tickets = JiraTickets(jira.url, jira.email, jira.token, "OPS", components=["database"])
        await asyncio.to_thread(tickets.create, make_incident(), ANALYSIS, PERMALINK, timeline)

    [fields] = jira.created
    assert fields["components"] == [{"name": "database"}]
    body = fields["description"]
    assert "h3. Timeline" in body and "opened by system" in body
    assert "acknowledged by U0ANN: looking \\{code\\}" in body


async def test_unknown_component_is_named() -> None:
    async with JiraFake() as jira:
        tickets = JiraTickets(jira.url, jira.email, jira.token, "OPS", components=["billing"])
        assert "Component name 'billing' is not valid" in await reason_of(tickets)


async def test_comment_and_transition_on_the_created_issue() -> None:
    async with JiraFake() as jira:
        tickets = JiraTickets(jira.url, jira.email, jira.token, "OPS")
        ticket = await asyncio.to_thread(tickets.create, make_incident(), ANALYSIS, PERMALINK)
        await asyncio.to_thread(tickets.comment, ticket.key, "Resolved by U0ANN after 7m.")
        status = await asyncio.to_thread(tickets.transition, ticket.key, "done")

        assert jira.comments[ticket.key] == ["Resolved by U0ANN after 7m."]
        assert status == "Done" and jira.status[ticket.key] == "Done"
        with pytest.raises(TicketError) as again:
            await asyncio.to_thread(tickets.transition, ticket.key, "Done")
    assert (
        again.value.reason == "Jira issue OPS-1 offers no transition 'Done' now (offered: 'Reopen')"
    )
    assert not again.value.retryable


async def test_comment_failures_say_whether_a_retry_can_help() -> None:
    async with JiraFake() as jira:
        tickets = JiraTickets(jira.url, jira.email, jira.token, "OPS")
        with pytest.raises(TicketError) as missing:
            await asyncio.to_thread(tickets.comment, "OPS-404", "hello")
        jira.fail_next(500, count=5)
        with pytest.raises(TicketError) as down:
            await asyncio.to_thread(tickets.comment, "OPS-404", "hello")
    assert not missing.value.retryable
    assert down.value.retryable and down.value.reason == "Jira is unavailable (500)"
