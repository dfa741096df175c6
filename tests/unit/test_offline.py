"""The offline analyzer on realistic alerts, one failure class at a time.

Alerts are built the way their senders build them and read through the real parsers: fixture
payloads where one fits, otherwise CloudWatch alarm JSON inside an SNS notification, decoded
CloudWatch Logs subscription data, or the brief's custom JSON. Incidents come from the real
lifecycle on a real SQLite store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from analysis.context import AnalysisContext, ContextSection
from analysis.models import Diagnosis, RelatedIncident
from analysis.offline import MAX_CONFIDENCE, MIN_CONFIDENCE, RULES, diagnose
from incidents.lifecycle import IncidentService
from incidents.models import Alert, Severity
from ingest.normalize import parse_body
from tests.conftest import BRIEF_ALERT, T0, ManualClock

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
PLACEHOLDER = re.compile(r"<[a-z_ -]+>|\{[a-z_]+\}|\bNone\b")


# --- building alerts the way their senders do ---------------------------------------------------


def fixture(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def sns_alarm(
    name: str,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    *,
    region: str = "eu-west-1",
    operator: str = "GreaterThanThreshold",
    threshold: float = 80.0,
    description: str = "",
) -> dict[str, Any]:
    """A classic CloudWatch alarm notification inside its SNS envelope, as SNS delivers it."""
    alarm = {
        "AlarmName": name,
        "AlarmDescription": description,
        "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 3 out of the last 3 datapoints were beyond the "
        f"threshold ({threshold}).",
        "StateChangeTime": "2026-11-24T08:00:00.000+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:{region}:123456789012:alarm:{name}",
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": metric,
            "Namespace": namespace,
            "StatisticType": "Statistic",
            "Statistic": "MAXIMUM",
            "Dimensions": [{"value": v, "name": k} for k, v in dimensions.items()],
            "Period": 60,
            "EvaluationPeriods": 3,
            "ComparisonOperator": operator,
            "Threshold": threshold,
            "TreatMissingData": "missing",
        },
    }
    return {
        "Type": "Notification",
        "MessageId": f"0f6c1d2e-{len(name):04d}-4a5b-8c7d-9e0f1a2b3c4d",
        "TopicArn": f"arn:aws:sns:{region}:123456789012:alarms",
        "Subject": f'ALARM: "{name}"',
        "Message": json.dumps(alarm),
        "Timestamp": "2026-11-24T08:00:01.000Z",
    }


def log_event(group: str, message: str) -> dict[str, Any]:
    """Decoded CloudWatch Logs subscription data with one event, as a filter forwards it."""
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": "2026/11/24/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "subscriptionFilters": ["errors"],
        "logEvents": [
            {
                "id": "37930285410138375285746372589402758203475829034758290347",
                "timestamp": 1795507200000,
                "message": message,
            }
        ],
    }


def parse(payload: Any, index: int = 0) -> Alert:
    return parse_body(json.dumps(payload).encode(), T0).alerts[index]


def run(
    service: IncidentService,
    payload: Any,
    context: AnalysisContext | None = None,
    index: int = 0,
) -> tuple[Diagnosis, str]:
    alert = parse(payload, index)
    incident = service.record(alert).incident
    assert incident is not None
    diagnosis, name = diagnose(incident, alert, context or AnalysisContext())
    assert_well_formed(diagnosis, name)
    return diagnosis, name


def texts(diagnosis: Diagnosis) -> list[str]:
    return [
        diagnosis.root_cause,
        diagnosis.severity_justification,
        diagnosis.impact,
        *diagnosis.check_first,
        *(a.hypothesis for a in diagnosis.alternatives),
        *(a.why_less_likely for a in diagnosis.alternatives),
        *(step.action for step in diagnosis.remediation_steps),
    ]


def commands(diagnosis: Diagnosis) -> list[str]:
    return [step.command for step in diagnosis.remediation_steps if step.command]


def assert_well_formed(diagnosis: Diagnosis, name: str) -> None:
    """What every result owes its reader: it validates, its confidence is honest, and no text
    carries a placeholder or a Python `None`."""
    assert Diagnosis.model_validate(diagnosis.model_dump()) == diagnosis
    if name == "unknown":
        assert diagnosis.confidence == 0.1
    else:
        assert MIN_CONFIDENCE <= diagnosis.confidence <= MAX_CONFIDENCE
    for text in [*texts(diagnosis), *commands(diagnosis)]:
        assert not PLACEHOLDER.search(text), text
        assert text == text.strip() and "  " not in text, text


# --- the brief's sample -------------------------------------------------------------------------


def test_brief_sample_is_connection_pool_exhaustion_in_detail(service: IncidentService) -> None:
    diagnosis, name = run(service, BRIEF_ALERT)

    assert name == "connection_pool"
    root = diagnosis.root_cause
    assert "PostgreSQL" in root and "`app_user`" in root
    assert "too many connections" in root and "connection-pool exhaustion" in root
    assert "connection.js:42" in root and "30s" in root
    assert "leak" in root

    cmds = commands(diagnosis)
    assert cmds[0] == "SELECT count(*), usename, state FROM pg_stat_activity GROUP BY 2,3;"
    assert any("rolname = 'app_user'" in c and "max_connections" in c for c in cmds)
    rds = next(c for c in cmds if "DatabaseConnections" in c)
    assert rds.startswith(
        "aws cloudwatch get-metric-statistics --namespace AWS/RDS --metric-name "
        "DatabaseConnections "
    )
    assert "--start-time 2026-11-24T07:00:00Z --end-time 2026-11-24T08:15:00Z" in rds
    assert any("usename = 'app_user'" in c and "idle in transaction" in c for c in cmds)
    actions = " ".join(step.action for step in diagnosis.remediation_steps)
    assert "connection leak" in actions and "connection.js:42" in actions
    assert "RDS Proxy or pgbouncer" in actions and "role's limit" in actions
    order = [step.action for step in diagnosis.remediation_steps]
    assert order.index(next(a for a in order if "count sessions" in a)) < order.index(
        next(a for a in order if "RDS Proxy" in a)
    )

    [alternative] = diagnosis.alternatives
    assert alternative.hypothesis.startswith("A plain timeout")
    assert "30s" in alternative.hypothesis
    assert "PostgreSQL connection timeout after 30s" in alternative.why_less_likely
    assert "too many connections" in alternative.why_less_likely
    assert "consequence" in alternative.why_less_likely

    assert diagnosis.severity is Severity.HIGH
    assert diagnosis.severity_justification.startswith("HIGH, as the sender rated it")
    assert "Not raised to CRITICAL" in diagnosis.severity_justification
    assert "`app_user`" in diagnosis.impact and "`test`" in diagnosis.impact
    assert "One occurrence so far, at 08:00 UTC." in diagnosis.impact
    assert any("`app_user`" in check for check in diagnosis.check_first)
    assert 0.35 <= diagnosis.confidence <= 0.5


def test_pool_exhaustion_that_also_times_out_keeps_timeouts_as_the_alternative(
    service: IncidentService,
) -> None:
    payload = log_event(
        "/ecs/orders-api",
        "2026-11-24 08:00:00.120 ERROR 1 --- [nio-8080-exec-7] o.h.engine.jdbc.spi."
        "SqlExceptionHelper : HikariPool-1 - Connection is not available, request timed out "
        "after 30000ms.",
    )

    diagnosis, name = run(service, payload)

    assert name == "connection_pool"
    assert "connection pool is exhausted" in diagnosis.root_cause
    assert "after 30000ms" in diagnosis.root_cause
    assert "2026-11-24 08:00:00.120" not in diagnosis.root_cause  # the log prefix is not quoted
    assert "`/ecs/orders-api`" in diagnosis.impact
    [alternative] = diagnosis.alternatives
    assert alternative.hypothesis.startswith("A plain timeout")
    assert alternative.why_less_likely.startswith("The same line also reports timeouts")


def test_rds_connection_alarm_names_the_instance(service: IncidentService) -> None:
    payload = sns_alarm(
        "orders-db-connections",
        "AWS/RDS",
        "DatabaseConnections",
        {"DBInstanceIdentifier": "orders-db"},
    )

    diagnosis, name = run(service, payload)

    assert name == "connection_pool"
    assert "RDS instance `orders-db`" in diagnosis.root_cause
    assert "alarm `orders-db-connections` on `DatabaseConnections`" in diagnosis.root_cause
    assert any(
        "Name=DBInstanceIdentifier,Value=orders-db" in c and "--region eu-west-1" in c
        for c in commands(diagnosis)
    )


# --- one realistic alert per failure class ------------------------------------------------------


def test_lambda_timeout_from_its_log_group(service: IncidentService) -> None:
    payload = log_event(
        "/aws/lambda/checkout-api",
        "2026-11-24T08:00:00.000Z 6f1c2d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f Task timed out after "
        "6.01 seconds",
    )

    diagnosis, name = run(service, payload)

    assert name == "timeouts"
    assert "Lambda function `checkout-api`" in diagnosis.root_cause
    assert "(`Task timed out after 6.01 seconds`)" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert any(
        c.startswith("aws logs filter-log-events --log-group-name /aws/lambda/checkout-api")
        for c in cmds
    )
    assert any("get-function-configuration --function-name checkout-api" in c for c in cmds)
    assert any("--metric-name Duration" in c and "Value=checkout-api" in c for c in cmds)


def test_memory_pressure_from_alertmanager(service: IncidentService) -> None:
    payload = fixture(
        "prometheus-alertmanager/prometheus-msteams_pkg_card_testdata_prom_post_request.json"
    )

    diagnosis, name = run(service, payload)

    assert name == "oom"
    assert "`instance-with-hyphen_and_underscore` (job `docker_nodes`)" in diagnosis.root_cause
    assert any('instance="instance-with-hyphen_and_underscore"' in c for c in commands(diagnosis))
    # Pressure is not yet a kill: the severity stays the label's and is not called an outage.
    assert diagnosis.severity is Severity.MEDIUM
    assert "Not raised: on its own" in diagnosis.severity_justification


def test_ecs_memory_alarm_is_pressure_not_a_kill(service: IncidentService) -> None:
    payload = sns_alarm(
        "api-memory-high",
        "AWS/ECS",
        "MemoryUtilization",
        {"ClusterName": "prod", "ServiceName": "api"},
    )

    diagnosis, name = run(service, payload)

    assert name == "oom"
    assert "Memory on ECS service `api` in cluster `prod` is under pressure" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert any(
        "--metric-name MemoryUtilization --dimensions Name=ServiceName,Value=api "
        "Name=ClusterName,Value=prod" in c
        for c in cmds
    )
    assert any(c.startswith("aws ecs describe-tasks --cluster prod") for c in cmds)
    assert "Not raised: on its own" in diagnosis.severity_justification


def test_lambda_killed_for_memory(service: IncidentService) -> None:
    payload = log_event(
        "/aws/lambda/image-resizer",
        "RequestId: 9b1c7e1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b Error: Runtime exited with error: "
        "signal: killed\nRuntime.ExitError",
    )

    diagnosis, name = run(service, payload)

    assert name == "oom"
    assert "Lambda function `image-resizer`" in diagnosis.root_cause
    assert "signal: killed" in diagnosis.root_cause
    assert any(
        "update-function-configuration --function-name image-resizer --memory-size" in c
        for c in commands(diagnosis)
    )
    assert "Not raised to CRITICAL" in diagnosis.severity_justification  # a kill stops work


def test_rds_storage_alarm_is_disk_full(service: IncidentService) -> None:
    payload = sns_alarm(
        "orders-db-low-storage",
        "AWS/RDS",
        "FreeStorageSpace",
        {"DBInstanceIdentifier": "orders-db"},
        operator="LessThanThreshold",
        threshold=5368709120.0,
    )

    diagnosis, name = run(service, payload)

    assert name == "disk_full"
    assert "RDS instance `orders-db`" in diagnosis.root_cause
    assert "alarm `orders-db-low-storage` on `FreeStorageSpace`" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert any(
        "--metric-name FreeStorageSpace" in c and "Value=orders-db" in c and "Minimum" in c
        for c in cmds
    )
    assert any("modify-db-instance --db-instance-identifier orders-db" in c for c in cmds)
    assert any("pg_replication_slots" in c for c in cmds)
    assert any(
        "describe-alarm-history --alarm-name orders-db-low-storage" in c
        and c.endswith("--region eu-west-1")
        for c in cmds
    )
    assert diagnosis.severity is Severity.HIGH


def test_lambda_throttles_alarm(service: IncidentService) -> None:
    payload = sns_alarm(
        "checkout-api-throttles", "AWS/Lambda", "Throttles", {"FunctionName": "checkout-api"}
    )

    diagnosis, name = run(service, payload)

    assert name == "throttling"
    assert "Lambda function `checkout-api` is being throttled" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert any("get-function-concurrency --function-name checkout-api" in c for c in cmds)
    assert any("--metric-name ConcurrentExecutions" in c for c in cmds)


def test_alb_target_5xx_alarm(service: IncidentService) -> None:
    payload = sns_alarm(
        "web-prod-target-5xx",
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
        {"LoadBalancer": "app/web-prod/50dc6c495c0c9188"},
        region="us-east-1",
        threshold=50.0,
    )

    diagnosis, name = run(service, payload)

    assert name == "http_5xx"
    assert "Load balancer `web-prod`" in diagnosis.root_cause
    assert "the targets themselves answer with errors" in diagnosis.root_cause
    cmds = commands(diagnosis)
    for metric in ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"):
        assert any(
            f"--metric-name {metric}" in c
            and "Value=app/web-prod/50dc6c495c0c9188" in c
            and "--region us-east-1" in c
            for c in cmds
        )
    assert "EC2 console → Load Balancers → web-prod → Resource map" in cmds
    # Every 5xx is a failed request, yet a spike on HIGH stays HIGH without an outage marker.
    assert diagnosis.severity is Severity.HIGH


def test_iam_denial_names_role_action_and_resource(service: IncidentService) -> None:
    payload = log_event(
        "/aws/lambda/orders-writer",
        "[ERROR] ClientError: An error occurred (AccessDeniedException) when calling the PutItem "
        "operation: User: arn:aws:sts::123456789012:assumed-role/orders-writer-role/"
        "orders-writer is not authorized to perform: dynamodb:PutItem on resource: "
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders because no identity-based policy "
        "allows the dynamodb:PutItem action",
    )

    diagnosis, name = run(service, payload)

    assert name == "auth"
    root = diagnosis.root_cause
    assert "`dynamodb:PutItem`" in root and "`orders-writer-role`" in root
    assert "Lambda function `orders-writer`" in root
    assert (
        "aws iam simulate-principal-policy --policy-source-arn "
        "arn:aws:iam::123456789012:role/orders-writer-role --action-names dynamodb:PutItem "
        "--resource-arns arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
    ) in commands(diagnosis)


def test_acm_expiry_alarm_is_a_deadline_not_an_outage(service: IncidentService) -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/8f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
    payload = sns_alarm(
        "api-cert-expiring",
        "AWS/CertificateManager",
        "DaysToExpiry",
        {"CertificateArn": arn},
        region="us-east-1",
        operator="LessThanThreshold",
        threshold=14.0,
    )

    diagnosis, name = run(service, payload)

    assert name == "certificate"
    assert f"ACM certificate `{arn}` is approaching expiry" in diagnosis.root_cause
    assert diagnosis.impact.startswith("Nothing breaks yet.")
    assert any(f"describe-certificate --certificate-arn {arn}" in c for c in commands(diagnosis))


def test_expired_certificate_of_a_dependency(service: IncidentService) -> None:
    payload = log_event(
        "/ecs/billing-worker",
        'ERROR Post "https://api.payments-partner.com/v2/charges": x509: certificate has expired '
        "or is not yet valid: current time 2026-11-24T08:00:00Z is after 2026-11-23T23:59:59Z",
    )

    diagnosis, name = run(service, payload)

    assert name == "certificate"
    assert "`api.payments-partner.com`" in diagnosis.root_cause
    assert "`/ecs/billing-worker`" in diagnosis.root_cause
    assert any(
        c.startswith("echo | openssl s_client -connect api.payments-partner.com:443")
        for c in commands(diagnosis)
    )


def test_dns_failure_names_the_host(service: IncidentService) -> None:
    payload = log_event(
        "/ecs/checkout-service",
        "Error: getaddrinfo ENOTFOUND payments.internal.example.com\n"
        "    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26)",
    )

    diagnosis, name = run(service, payload)

    assert name == "dns"
    assert "cannot resolve `payments.internal.example.com`" in diagnosis.root_cause
    assert "does not exist for this resolver" in diagnosis.root_cause
    cmds = commands(diagnosis)
    host = "payments.internal.example.com"
    assert f"dig +short {host}; dig +short {host} @1.1.1.1" in cmds
    assert any("list-hosted-zones-by-name --dns-name internal.example.com" in c for c in cmds)


def test_code_error_from_sentry_points_at_the_last_deploy(service: IncidentService) -> None:
    diagnosis, name = run(service, fixture("sentry/sentry-docs_webhook_issue-alert_triggered.json"))

    assert name == "deploy_regression"
    assert diagnosis.root_cause.startswith("`ReferenceError: heck is not defined` is a code-level")
    assert any("roll back" in step.action for step in diagnosis.remediation_steps)
    assert diagnosis.confidence <= 0.35  # a code error alone is a weak pointer at a deploy


def test_error_spike_after_a_deploy_ranks_the_deploy_above_the_5xx(
    service: IncidentService,
) -> None:
    payload = {
        "source": "datadog",
        "title": "Error rate spike on checkout after deploy v2.14.0",
        "message": "HTTP 500 responses rose from 0.1% to 7% since the 07:52 release",
        "severity": "high",
    }

    diagnosis, name = run(service, payload)

    assert name == "deploy_regression"
    assert "the release of `v2.14.0`" in diagnosis.root_cause
    [alternative] = diagnosis.alternatives
    assert alternative.hypothesis.startswith("A 5xx spike")
    assert "consequence" in alternative.why_less_likely


def test_sqs_backlog_alarm(service: IncidentService) -> None:
    payload = sns_alarm(
        "orders-events-backlog",
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": "orders-events"},
        threshold=600.0,
    )

    diagnosis, name = run(service, payload)

    assert name == "queue_backlog"
    assert "SQS queue `orders-events` is backing up" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert any("get-queue-url --queue-name orders-events" in c for c in cmds)
    assert any(
        "--event-source-arn arn:aws:sqs:eu-west-1:123456789012:orders-events" in c for c in cmds
    )
    assert "Not raised: on its own" in diagnosis.severity_justification


def test_ec2_cpu_alarm_from_eventbridge(service: IncidentService) -> None:
    payload = fixture(
        "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-single-metric-alarm.json"
    )

    diagnosis, name = run(service, payload)

    assert name == "cpu_saturation"
    assert "EC2 instance `i-12345678901234567` is CPU-saturated" in diagnosis.root_cause
    assert "alarm `ServerCpuTooHigh` on `CPUUtilization`" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert any(
        c.startswith("aws ssm send-command --instance-ids i-12345678901234567")
        and c.endswith("--region us-east-1")
        for c in cmds
    )
    assert any("describe-instances --instance-ids i-12345678901234567" in c for c in cmds)


def test_unmatched_alarm_is_unknown_with_steps_on_what_it_names(
    service: IncidentService,
) -> None:
    payload = fixture(
        "cloudwatch-alarm-eventbridge/awsdocs-cw-guide_state-change-for-a-metric-math-alarm.json"
    )

    diagnosis, name = run(service, payload)

    assert name == "unknown"
    assert diagnosis.confidence == 0.1
    assert diagnosis.alternatives == []
    assert "“TotalNetworkTrafficTooHigh”" in diagnosis.root_cause
    cmds = commands(diagnosis)
    assert (
        "aws cloudwatch describe-alarm-history --alarm-name TotalNetworkTrafficTooHigh "
        "--history-item-type StateUpdate --start-date 2019-10-01T17:20:00Z --max-records 20 "
        "--region us-east-1"
    ) in cmds
    assert any(
        "--metric-name NetworkIn --dimensions Name=InstanceId,Value=i-12345678901234567" in c
        for c in cmds
    )
    assert any(c.startswith("aws cloudtrail lookup-events") for c in cmds)


def test_alert_that_names_nothing_still_reads_well(service: IncidentService) -> None:
    diagnosis, name = run(service, fixture("sns/lambda-go_sns-event.json"))

    assert name == "unknown"
    assert "the service behind this `sns` alert" in diagnosis.root_cause
    assert "Kept as sent." in diagnosis.severity_justification
    assert len(diagnosis.remediation_steps) >= 3


def test_every_failure_class_of_the_issue_is_in_the_rule_base() -> None:
    assert [rule.name for rule in RULES] == [
        "connection_pool",
        "oom",
        "disk_full",
        "throttling",
        "auth",
        "certificate",
        "dns",
        "deploy_regression",
        "timeouts",
        "http_5xx",
        "queue_backlog",
        "cpu_saturation",
    ]


# --- severity -------------------------------------------------------------------------------------


def test_outage_words_raise_a_user_facing_class_one_level(service: IncidentService) -> None:
    payload = {
        "source": "checkout",
        "title": "Checkout outage: all requests failing with 502 Bad Gateway",
        "message": "upstream returned 502 Bad Gateway since 07:58",
        "severity": "HIGH",
    }

    diagnosis, name = run(service, payload)

    assert name == "http_5xx"
    assert diagnosis.severity is Severity.CRITICAL
    assert diagnosis.severity_justification.startswith(
        "Raised one level from HIGH (as the sender rated it) to CRITICAL"
    )


def test_outage_words_do_not_raise_a_class_that_stops_nothing(service: IncidentService) -> None:
    payload = {
        "source": "grafana",
        "title": "CPU too high on the batch host, all users notified",
        "message": "cpu saturated at 100% on batch-01",
        "severity": "MEDIUM",
    }

    diagnosis, name = run(service, payload)

    assert name == "cpu_saturation"
    assert diagnosis.severity is Severity.MEDIUM


def test_low_is_never_raised_and_resolved_alerts_say_so(service: IncidentService) -> None:
    low = {**BRIEF_ALERT, "title": "DB outage", "severity": "LOW"}
    diagnosis, _ = run(service, low)
    assert diagnosis.severity is Severity.LOW
    assert "Kept at LOW" in diagnosis.severity_justification

    run(service, BRIEF_ALERT)
    diagnosis, _ = run(service, {**BRIEF_ALERT, "status": "resolved"})
    assert diagnosis.severity is Severity.HIGH
    assert "The alert has since cleared" in diagnosis.severity_justification


# --- context, bounds, purity ----------------------------------------------------------------------


def test_context_evidence_counts_and_past_incidents_come_first(service: IncidentService) -> None:
    payload = sns_alarm("orders-api-errors", "AWS/Lambda", "Errors", {"FunctionName": "orders-api"})
    context = AnalysisContext(
        sections=[
            ContextSection(
                name="logs",
                text="2026-11-24T07:59:58Z ERROR error: remaining connection slots are reserved "
                "for non-replication superuser connections\n"
                "2026-11-24T07:59:59Z ERROR Task timed out after 6.00 seconds",
            )
        ],
        related=[
            RelatedIncident(
                incident_id="INC-7K3F9QZ2",
                title="orders-api-errors",
                status="resolved",
                outcome="Raised the RDS Proxy MaxConnectionsPercent from 50 to 90",
            )
        ],
    )

    diagnosis, name = run(service, payload, context)

    assert name == "connection_pool"  # named outright in the logs, it explains the timeouts
    assert "PostgreSQL is refusing new connections" in diagnosis.root_cause
    assert "in the logs)" in diagnosis.root_cause
    assert diagnosis.alternatives[0].hypothesis.startswith("A plain timeout")
    assert diagnosis.check_first[0].startswith("INC-7K3F9QZ2 (orders-api-errors, resolved)")
    assert diagnosis.confidence < 0.4  # evidence from context only is weaker


def test_no_field_echoes_more_than_a_short_quote_of_the_alert(service: IncidentService) -> None:
    words = [f"tok{i:04d}" for i in range(1500)]
    words[700] = "FATAL: too many connections for role app_user"
    payload = {"source": "custom", "title": "DB errors", "message": " ".join(words)}

    diagnosis, name = run(service, payload)

    assert name == "connection_pool"
    for text in [*texts(diagnosis), *commands(diagnosis)]:
        assert len(re.findall(r"tok\d{4}", text)) <= 200 // len("tok0000 ")


def test_weak_hint_alone_is_unknown_with_the_hint_as_alternative(
    service: IncidentService,
) -> None:
    payload = {"source": "custom", "title": "Checkout is slow", "message": "p99 went up"}

    diagnosis, name = run(service, payload)

    assert name == "unknown"
    [alternative] = diagnosis.alternatives
    assert alternative.hypothesis.startswith("A plain timeout")
    assert "Only a faint hint" in alternative.why_less_likely


def test_same_input_same_diagnosis(service: IncidentService) -> None:
    alert = parse(BRIEF_ALERT)
    incident = service.record(alert).incident
    assert incident is not None

    first = diagnose(incident, alert, AnalysisContext())
    second = diagnose(incident, alert, AnalysisContext())

    assert first == second


@pytest.mark.parametrize(
    "payload",
    [
        {"source": "custom", "title": "x", "message": ""},
        {"source": "custom", "title": "`weird` {name} <resource>", "message": "None"},
    ],
)
def test_degenerate_alerts_still_give_a_valid_diagnosis(
    service: IncidentService, payload: dict[str, str]
) -> None:
    alert = parse(payload)
    incident = service.record(alert).incident
    assert incident is not None

    diagnosis, name = diagnose(incident, alert, AnalysisContext())

    assert name == "unknown"
    assert Diagnosis.model_validate(diagnosis.model_dump()) == diagnosis
    assert diagnosis.remediation_steps


def test_repeats_are_counted_in_the_impact(service: IncidentService, clock: ManualClock) -> None:
    alert = parse(BRIEF_ALERT)
    service.record(alert)
    clock.advance(minutes=3)
    incident = service.record(alert).incident
    assert incident is not None

    diagnosis, _ = diagnose(incident, alert, AnalysisContext())

    assert diagnosis.impact.endswith("It has fired 2 times since 08:00 UTC.")
