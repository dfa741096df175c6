"""Runbooks: the file as people write it, matched against alerts the real parsers produce,
shown on the message as a link and given to the analysis as context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.context import AnalysisContext
from analysis.runbooks import (
    RunbookError,
    RunbookGatherer,
    Runbooks,
    alarm_name,
    load_runbooks,
    runbook_context,
)
from blocks.incident import render_incident
from incidents.models import Alert, Incident
from ingest.normalize import parse_body
from tests.conftest import FIXTURES, T0, make_alert
from tests.samples import make_incident

RUNBOOKS = """
runbooks:
  - name: Orders API 5xx in production
    match:
      alarm_name: "*5XX*"
      labels: {region: us-east-1}
    url: https://wiki.example.com/runbooks/orders-5xx
    notes: |
      Roll back the last deploy first: `aws ecs update-service --force-new-deployment`.
  - name: Any database connection problem
    match: {fingerprint: "*"}
    url: https://wiki.example.com/runbooks/db
"""


@pytest.fixture
def runbooks(tmp_path: Path) -> Runbooks:
    path = tmp_path / "runbooks.yaml"
    path.write_text(RUNBOOKS)
    return load_runbooks(path)


def _alarm() -> Alert:
    """A CloudWatch alarm as SNS delivers it, through the real parser."""
    sample = (
        FIXTURES
        / "payloads/cloudwatch-alarm-sns/lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
    )
    return parse_body(sample.read_bytes(), T0).alerts[0]


def test_the_first_entry_whose_conditions_all_hold_wins(runbooks: Runbooks):
    alert = make_alert(problem="orders")
    found = runbooks.find(alert)
    assert found is not None and found.name == "Any database connection problem"
    assert runbooks.find(alert.model_copy(update={"labels": {"alarm_name": "orders-5xx-high",
                                                             "region": "us-east-1"}})) \
        .name == "Orders API 5xx in production"  # type: ignore[union-attr]  # fmt: skip
    wrong_region = alert.model_copy(
        update={"labels": {"alarm_name": "orders-5XX", "region": "eu-west-1"}}
    )
    assert runbooks.find(wrong_region).name == "Any database connection problem"  # type: ignore[union-attr]


def test_patterns_ignore_case_and_a_real_alarm_is_matched_by_its_name(tmp_path: Path):
    alert = _alarm()
    name = alarm_name(alert)
    assert name and name == alert.labels["alarm_name"]
    path = tmp_path / "runbooks.yaml"
    path.write_text(json.dumps({"runbooks": [{
        "name": "This alarm", "url": "https://wiki.example.com/x",
        "match": {"alarm_name": name.upper()[:3].lower() + "*"},
    }]}))  # fmt: skip
    assert load_runbooks(path).find(alert) is not None


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("runbooks: [{name: x, url: 'javascript:alert(1)', match: {fingerprint: a}}]",
         "is not an http(s) link"),
        ("runbooks: [{name: x, url: 'https://a.example/x', match: {}}]", "`match` names nothing"),
        ("runbooks: [{name: x, url: 'https://a.example/x', match: {alarm: a}}]",
         "Extra inputs are not permitted"),
        ("runbooks: {name: x}", "must hold a list"),
        ("runbooks: [: bad", "is not valid YAML"),
    ],
)  # fmt: skip
def test_a_mistake_in_the_file_names_the_entry_and_the_problem(
    tmp_path: Path, document: str, problem: str
):
    path = tmp_path / "runbooks.yaml"
    path.write_text(document)
    with pytest.raises(RunbookError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_runbooks(path)


def test_no_file_is_no_runbooks_and_a_missing_file_is_an_error(tmp_path: Path):
    assert len(load_runbooks(None)) == 0
    with pytest.raises(RunbookError, match="cannot read"):
        load_runbooks(tmp_path / "absent.yaml")


def test_the_message_links_the_runbook_and_escapes_its_name():
    message = render_incident(
        make_incident(), None, jira_enabled=False, email_enabled=False,
        runbook=("<!channel> DB runbook", "https://wiki.example.com/runbooks/db"),
    )  # fmt: skip
    [line] = [b for b in message.blocks if "Runbook" in json.dumps(b)]
    text = line["elements"][0]["text"]
    assert (
        text == ":book: Runbook: <https://wiki.example.com/runbooks/db|&lt;!channel&gt; DB runbook>"
    )


class _NoContext:
    async def gather(self, incident: Incident, alert: Alert) -> AnalysisContext:
        return AnalysisContext()


async def test_the_runbook_is_a_context_section_for_the_analysis(runbooks: Runbooks):
    alert = make_alert(problem="orders").model_copy(
        update={"labels": {"alarm_name": "orders-5xx", "region": "us-east-1"}}
    )
    context = await RunbookGatherer(_NoContext(), runbooks).gather(make_incident(), alert)
    section = context.section("runbook")
    assert section is not None
    assert section.text == runbook_context(runbooks.entries[0])
    assert "wiki.example.com/runbooks/orders-5xx" in section.text
    assert "Roll back the last deploy" in section.text
