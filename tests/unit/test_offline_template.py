"""Command templating of the signature library: `{region_flag}` is the alert's region as a
flag, or nothing, never quoted nor asked for; a value the alert lacks is a variable to set."""

from __future__ import annotations

from analysis.context import AnalysisContext
from analysis.offline.facts import read_facts
from analysis.offline.signatures import Step
from analysis.offline.template import render_step, values
from incidents.lifecycle import IncidentService
from tests.conftest import make_alert

STEP = Step(
    action="Read the subnets of {function} in {region}.",
    command="aws lambda get-function-configuration --function-name {function}{region_flag}",
)


def rendered(service: IncidentService, **labels: str) -> tuple[str, str | None]:
    alert = make_alert().model_copy(update={"labels": labels})
    incident = service.record(alert).incident
    assert incident is not None
    step = render_step(STEP, values(read_facts(incident, alert, AnalysisContext()), ()))
    return step.action, step.command


def test_a_known_region_becomes_the_flag(service: IncidentService):
    action, command = rendered(service, region="eu-west-1")

    assert command == (
        'aws lambda get-function-configuration --function-name "$FUNCTION" --region eu-west-1'
    )
    assert action == "Read the subnets of the function in `eu-west-1` (set FUNCTION first)."


def test_no_region_leaves_the_flag_out_and_asks_for_nothing_more(service: IncidentService):
    action, command = rendered(service)

    assert command == 'aws lambda get-function-configuration --function-name "$FUNCTION"'
    assert action == "Read the subnets of the function in the region (set FUNCTION first)."
