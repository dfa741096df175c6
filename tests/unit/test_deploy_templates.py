"""The deployment files, checked without AWS: both CloudFormation templates lint clean, the
bot's IAM policy grants exactly the AWS calls the code makes, and the Dockerfile, the queue
policy and the ECS task definition agree with the bot's settings.

What moto cannot deploy (the queue policy, the subscription) is checked here by its content;
tests/integration/test_deploy_stack.py deploys the rest and runs the bot on it."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.decode.decode import decode_str

from bot.settings import Settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
TEMPLATES = ("template.yaml", "cloudwatch-integration.yaml")
# The packages that ship in the image (pyproject's [tool.setuptools.packages.find] include).
SOURCES = ("ingest", "incidents", "analysis", "blocks", "notify", "bot")
# The AWS services the code has clients for.
SERVICES = ("sqs", "dynamodb", "cloudwatch", "logs", "ses", "cloudtrail", "ecs", "lambda")
# IAM has no actions of their own for SQS batch calls: each needs its single call's action.
BATCH_ACTIONS = {
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sqs:SendMessageBatch": "sqs:SendMessage",
}
# DynamoStore.create_tables runs only from `incident-bot init-store`, for local use: in AWS the
# stack owns the table, so the bot's role may not create or reconfigure it.
LOCAL_ONLY = "create_tables"
# A TransactWriteItems needs the item-level permission of each kind of item in it.
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# Names the scan would read as boto3 calls that belong to other libraries, per file.
NOT_AWS = {"notify/email_transport.py": {"send_message"}}  # smtplib.SMTP.send_message
# Actions that have no resource-level permission, so AWS requires "*".
WILDCARD_ONLY = {
    "cloudwatch:GetMetricData",
    "ses:GetSendQuota",
    "logs:GetQueryResults",
    "logs:StopQuery",
    "cloudtrail:LookupEvents",
}
LINT = ManualArgs(include_checks=["I"])


def template(name: str) -> dict[str, Any]:
    decoded: dict[str, Any] | None
    decoded, errors = decode_str((DEPLOY / name).read_text())
    assert not errors and decoded is not None, errors
    return decoded


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_is_cfn_lint_clean(name: str):
    findings = lint_file(DEPLOY / name, config=LINT)
    assert [str(finding) for finding in findings] == []


def test_cfn_lint_catches_a_broken_table():
    """The lint test above means something: a table the store could not use is a finding."""
    broken = (DEPLOY / "template.yaml").read_text().replace("KeyType: RANGE", "KeyType: SORT")
    assert lint(broken, config=LINT)


def _operations() -> dict[str, str]:
    """boto3 method name -> IAM action, for every operation of the services the bot uses. A
    name several services share is read as the first one's in SERVICES: the code's
    `start_query` is Logs Insights', not CloudTrail Lake's."""
    session = botocore.session.get_session()
    found: dict[str, str] = {}
    for service in SERVICES:
        for operation in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(operation), f"{service}:{operation}")
    return found


def _names(node: ast.AST) -> list[str]:
    """Attribute names and string constants under `node`, except in `create_tables`: a grep
    for boto3 method names (`client.receive_message`, `self._call("put_item", ...)`)."""
    if isinstance(node, ast.FunctionDef) and node.name == LOCAL_ONLY:
        return []
    found: list[str] = []
    if isinstance(node, ast.Attribute):
        found.append(node.attr)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        found.append(node.value)
    for child in ast.iter_child_nodes(node):
        found.extend(_names(child))
    return found


def _transact_item_kinds(tree: ast.AST) -> set[str]:
    """The keys of the items in every `TransactItems=[...]` of the code."""
    return {
        key.value
        for call in ast.walk(tree)
        if isinstance(call, ast.keyword) and call.arg == "TransactItems"
        for item in ast.walk(call.value)
        if isinstance(item, ast.Dict)
        for key in item.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def code_actions() -> set[str]:
    """The IAM actions of every AWS API call in the shipped code."""
    operations = _operations()
    actions: set[str] = set()
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            foreign = NOT_AWS.get(str(path.relative_to(ROOT)), set())
            for name in _names(tree):
                if name in foreign:
                    continue
                if name == "transact_write_items":
                    kinds = _transact_item_kinds(tree)
                    assert kinds and kinds <= set(TRANSACT_ITEM_ACTIONS), (path, kinds)
                    actions |= {TRANSACT_ITEM_ACTIONS[kind] for kind in kinds}
                elif name in operations:
                    action = operations[name]
                    actions.add(BATCH_ACTIONS.get(action, action))
    return actions


def _statements(resource: str) -> list[dict[str, Any]]:
    document = template("template.yaml")["Resources"][resource]["Properties"]["PolicyDocument"]
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_bot_policy_grants_exactly_the_calls_the_code_makes():
    granted = {
        action for statement in _statements("BotPolicy") for action in _listed(statement["Action"])
    }
    expected = code_actions()
    # The scan finds the calls it should: the consumer, the store and the context gatherer.
    assert {"sqs:ReceiveMessage", "dynamodb:PutItem", "logs:FilterLogEvents"} <= expected
    assert "dynamodb:CreateTable" not in expected
    # GetFunction would hand out a presigned URL to a function's code; the configuration is
    # all the deployments tool reads. A query the Insights tool gives up on is stopped.
    assert "lambda:GetFunction" not in expected
    assert {"lambda:GetFunctionConfiguration", "logs:StopQuery"} <= expected
    assert granted == expected


def test_the_bot_policy_uses_a_wildcard_only_where_aws_requires_one():
    for statement in _statements("BotPolicy"):
        assert statement["Effect"] == "Allow"
        if "*" in _listed(statement["Resource"]):
            assert set(_listed(statement["Action"])) <= WILDCARD_ONLY, statement


def test_the_secrets_policy_reads_only_the_named_secrets():
    (statement,) = _statements("SecretsPolicy")
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    parameters = template("template.yaml")["Parameters"]
    named = {name for name in parameters if name.endswith("Secret")}
    referenced = set(re.findall(r"\$\{(\w+Secret)\}-\?{6}", json.dumps(statement["Resource"])))
    assert referenced == named
    assert len(named) == 5


def test_the_queue_policy_admits_the_topic_and_this_accounts_rules_only():
    """moto's CloudFormation skips AWS::SQS::QueuePolicy, so its content is checked here."""
    policy = template("template.yaml")["Resources"]["AlertQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "AlertQueue"}]
    by_service = {s["Principal"]["Service"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(by_service) == {"sns.amazonaws.com", "events.amazonaws.com"}
    for statement in by_service.values():
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == {"Fn::GetAtt": ["AlertQueue", "Arn"]}
    sns = by_service["sns.amazonaws.com"]["Condition"]
    assert sns == {"ArnEquals": {"aws:SourceArn": {"Ref": "AlertTopic"}}}
    events = by_service["events.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert events["Fn::Sub"].endswith(":events:${AWS::Region}:${AWS::AccountId}:rule/*")


def _container() -> dict[str, Any]:
    task = template("template.yaml")["Resources"]["BotTaskDefinition"]["Properties"]
    (container,) = task["ContainerDefinitions"]
    return dict(container)


def _named(entries: list[Any]) -> set[str]:
    """Names of the entries, the conditional ones (`Fn::If`) included."""
    names: set[str] = set()
    for entry in entries:
        if "Fn::If" in entry:
            _, then, _ = entry["Fn::If"]
            names.add(then["Name"])
        else:
            names.add(entry["Name"])
    return names


def test_the_task_definition_sets_only_settings_the_bot_reads():
    """A misspelt variable would be ignored by the bot, silently."""
    container = _container()
    settings = {name.upper() for name in Settings.model_fields} | {"AWS_REGION"}
    assert _named(container["Environment"]) <= settings
    assert _named(container["Secrets"]) <= settings
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ANTHROPIC_API_KEY"} <= _named(
        container["Secrets"]
    )


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_runs_the_bot_as_a_non_root_user():
    lines = _dockerfile()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines[-1] == 'CMD ["incident-bot", "run"]'
    # Only the runtime stage's USER counts: it must come after the last FROM.
    last_from = max(n for n, line in enumerate(lines) if line.startswith("FROM "))
    assert any(line.startswith("USER ") for line in lines[last_from:])


def test_the_image_health_check_is_the_task_definitions():
    """ECS ignores the image's HEALTHCHECK and runs the task definition's: keep them one."""
    (check,) = [line for line in _dockerfile() if line.startswith("HEALTHCHECK ")]
    options, command = check.split(" CMD ", 1)
    assert "--interval=30s" in shlex.split(options)
    assert ["CMD", *json.loads(command)] == _container()["HealthCheck"]["Command"]
    assert "/healthz" in command
