"""The alert's own log group, which context gathering reads and the investigation's tools may
read unlisted: decided in one place, so the two never disagree."""

from __future__ import annotations

from analysis.aws_clients import own_log_group
from analysis.investigation.aws_scope import AwsScope, AwsToolLimits
from incidents.models import Alert
from tests.conftest import make_alert


def logs_alert(resource: str | None, **labels: str) -> Alert:
    return make_alert().model_copy(
        update={"parser": "cloudwatch_logs", "resource": resource, "labels": labels}
    )


def test_a_logs_alert_names_its_group_by_label_first_then_by_resource():
    assert own_log_group(logs_alert("/aws/lambda/r", log_group="/aws/lambda/l")) == "/aws/lambda/l"
    assert own_log_group(logs_alert("/aws/lambda/r", log_group="")) == "/aws/lambda/r"
    assert own_log_group(logs_alert(None)) is None
    assert own_log_group(logs_alert("")) is None


def test_any_other_alert_has_no_own_log_group_even_if_it_names_one():
    alarm = make_alert().model_copy(
        update={"parser": "cloudwatch_alarm", "resource": "/aws/lambda/r"}
    )
    assert own_log_group(alarm) is None
    assert own_log_group(make_alert().model_copy(update={"labels": {"log_group": "g"}})) is None


def test_the_investigation_scope_uses_it():
    alert = logs_alert("/aws/lambda/r", log_group="/aws/lambda/l")
    scope = AwsScope.of(lambda service, region: None, AwsToolLimits(), alert)
    assert scope.own_log_group == "/aws/lambda/l"
