"""Throttling and rate limits. Lambda concurrency, DynamoDB capacity (or one hot key) and an AWS
API's rate limit are raised or relieved in different places.
"""

from __future__ import annotations

import re

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    dim,
    find_name,
    iso,
    make_step,
    metric_command,
    region_flag,
    sh,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook

_AWS_OPERATION = re.compile(r"when calling the (\w{2,64}) operation")


def _lambda(
    f: Facts, ev: Evidence, function_name: str
) -> tuple[str, tuple[RemediationStep, ...], str]:
    """A Lambda function throttled: concurrency, reserved or account-wide."""
    fn = sh(function_name)
    root = (
        f"Lambda function `{function_name}` is being throttled ({ev.lead}): invocations "
        "exceed the concurrency available to it, its reserved concurrency or the account's "
        "regional limit that every function shares. A burst of events, a retry storm or "
        "slower invocations (each holding concurrency longer) all lead here."
    )
    steps = steps_of(
        make_step(
            "Read its reserved concurrency and the account limit.",
            f"aws lambda get-function-concurrency --function-name {fn}{region_flag(f)} && "
            f"aws lambda get-account-settings --query AccountLimit{region_flag(f)}",
        ),
        make_step(
            "Graph ConcurrentExecutions against Throttles: at the ceiling means demand, "
            "below it means a reserved-concurrency cap.",
            metric_command(
                f, "AWS/Lambda", "ConcurrentExecutions", dim("FunctionName", function_name)
            ),
        ),
        make_step(
            "Check whether Duration rose at the same time: slower invocations hold "
            "concurrency longer and throttle at the same traffic.",
            metric_command(f, "AWS/Lambda", "Duration", dim("FunctionName", function_name)),
        ),
        make_step(
            "Raise reserved concurrency if the function is capped below its demand (set "
            "NEW_LIMIT); for the account limit, request a quota increase.",
            f"aws lambda put-function-concurrency --function-name {fn} "
            f'--reserved-concurrent-executions "$NEW_LIMIT"{region_flag(f)}',
        ),
        make_step(
            "If the account limit is what binds, request a higher concurrency quota.",
            "Service Quotas console → AWS Lambda → Concurrent executions",
        ),
    )
    where = f"Lambda function `{function_name}`"
    return root, steps, where


def _dynamodb(
    f: Facts, ev: Evidence, table_name: str
) -> tuple[str, tuple[RemediationStep, ...], str]:
    """A DynamoDB table throttled: capacity, or one hot key."""
    table = sh(table_name)
    root = (
        f"DynamoDB table `{table_name}` is throttling requests ({ev.lead}): reads or "
        "writes exceed its provisioned capacity, or traffic concentrates on a few hot "
        "partition keys that hit the per-partition limit even when the table has capacity."
    )
    steps = steps_of(
        make_step(
            "Read the table's billing mode and provisioned capacity.",
            f"aws dynamodb describe-table --table-name {table} --query "
            "'Table.{Billing:BillingModeSummary.BillingMode,Throughput:ProvisionedThroughput}'"
            f"{region_flag(f)}",
        ),
        make_step(
            "Compare consumed with provisioned write capacity in the same minutes.",
            metric_command(
                f,
                "AWS/DynamoDB",
                "ConsumedWriteCapacityUnits",
                dim("TableName", table_name),
                "Sum",
            ),
        ),
        make_step(
            "Turn on Contributor Insights to see the hottest keys.",
            f"aws dynamodb update-contributor-insights --table-name {table} "
            f"--contributor-insights-action ENABLE{region_flag(f)}",
        ),
        make_step(
            "If the load is real and spiky, switch to on-demand capacity (possible once per "
            "24 hours) or raise the provisioned capacity and its autoscaling maximum.",
            f"aws dynamodb update-table --table-name {table} --billing-mode PAY_PER_REQUEST"
            f"{region_flag(f)}",
        ),
    )
    where = f"DynamoDB table `{table_name}`"
    return root, steps, where


def _aws_api(
    f: Facts, ev: Evidence, operation: str | None
) -> tuple[str, tuple[RemediationStep, ...], str]:
    """An AWS API throttled: the operation's rate limit and the callers' retries."""
    api = f"the AWS API operation `{operation}`" if operation else "an API"
    root = (
        f"Calls to {api} from {f.service} are being throttled ({ev.lead}): the caller sends "
        "requests faster than the provider's rate limit allows. Bursts of parallel "
        "workers and retries without backoff are the usual reasons; the limit itself is "
        "rarely the thing that changed."
    )
    steps = steps_of(
        make_step(
            f"Find who calls `{operation}` and how often, in CloudTrail.",
            f"aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,"
            f"AttributeValue={operation} --start-time {iso(f.start)} --end-time "
            f"{iso(f.end)} --max-results 50 --query 'Events[].[EventTime,Username]' "
            f"--output table{region_flag(f)}",
        )
        if operation
        else make_step(
            "Find which caller sends the burst and to which endpoint (request logs, the "
            "provider's rate-limit headers)."
        ),
        make_step(
            "Make clients back off: AWS SDKs adapt their rate with the adaptive retry mode; "
            "other APIs need Retry-After honoured and exponential backoff with jitter.",
            "export AWS_RETRY_MODE=adaptive AWS_MAX_ATTEMPTS=10" if operation else None,
        ),
        make_step(
            "Cut the call volume: cache results, batch calls, or cap the number of parallel "
            "workers."
        ),
        make_step(
            "If the traffic is legitimate, ask for a higher quota.",
            "Service Quotas console → the service → its request-rate quota" if operation else None,
        ),
    )
    where = f.service
    return root, steps, where


def playbook(f: Facts, ev: Evidence) -> Playbook:
    operation = find_name(_AWS_OPERATION, f.evidence, 64)
    if f.function_name and not operation:
        root, steps, where = _lambda(f, ev, f.function_name)
    elif f.table_name:
        root, steps, where = _dynamodb(f, ev, f.table_name)
    else:
        root, steps, where = _aws_api(f, ev, operation)
    return Playbook(
        root_cause=root,
        hypothesis=f"Throttling of {where}: requests exceed a rate or concurrency limit.",
        impact=(
            f"Throttled requests to {where} fail or are retried later, so work is delayed or "
            "lost depending on the caller; retries add to the very load that is being "
            "throttled."
        ),
        stakes="throttled requests fail or are delayed until demand drops under the limit",
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            "Is demand up (traffic, a batch job, a retry storm) or did capacity go down?",
            "Which caller produces most of the requests",
            f"Changes to limits, reserved concurrency or capacity just before {f.since}",
        ),
    )
