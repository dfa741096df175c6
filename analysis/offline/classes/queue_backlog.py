"""Queue backlogs. For SQS the text names the queue and its Lambda event source mapping; for any
other queue it asks whether consumers run and keep up.
"""

from __future__ import annotations

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    dim,
    link_step,
    make_step,
    metric_command,
    region_flag,
    sh,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook


def _sqs(f: Facts, ev: Evidence, queue_name: str) -> tuple[str, tuple[RemediationStep, ...]]:
    """An SQS queue: its consumers and their event source mapping."""
    queue = sh(queue_name)
    queue_url = (
        f"$(aws sqs get-queue-url --queue-name {queue} --query QueueUrl --output text"
        f"{region_flag(f)})"
    )
    queue_arn = (
        f"arn:aws:sqs:{f.region}:{f.account}:{queue_name}" if f.region and f.account else None
    )
    root = (
        f"SQS queue `{queue_name}` is backing up ({ev.lead}): messages arrive faster than "
        "consumers remove them. Consumers are failing (messages return after the "
        "visibility timeout), too slow, too few, or stopped; a single poison message shows "
        "as a rising age of the oldest message with a flat count."
    )
    steps = steps_of(
        make_step(
            "Read the queue's depth, in-flight count and oldest-message age.",
            f"aws sqs get-queue-attributes --queue-url {queue_url} --attribute-names "
            "ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible "
            f"ApproximateAgeOfOldestMessage RedrivePolicy{region_flag(f)}",
        ),
        make_step(
            "Find the consumer and whether it is enabled and erroring.",
            f"aws lambda list-event-source-mappings --event-source-arn {sh(queue_arn)} "
            f"--query 'EventSourceMappings[].[FunctionArn,State,BatchSize]'{region_flag(f)}"
            if queue_arn
            else "Lambda console → Functions → (the consumer) → Configuration → Triggers",
        ),
        make_step(
            "Compare sent and deleted messages: deletes flat while sends continue means the "
            "consumer stopped or fails.",
            metric_command(
                f, "AWS/SQS", "NumberOfMessagesDeleted", dim("QueueName", queue_name), "Sum"
            ),
        ),
        make_step(
            "Read the consumer's errors; if one message fails repeatedly, let the redrive "
            "policy move it to the dead-letter queue rather than blocking the rest."
        ),
        make_step(
            "If consumers are healthy but outpaced, scale them out (more concurrency, "
            "larger batches) until the age of the oldest message falls."
        ),
    )
    return root, steps


def _other_queue(f: Facts, ev: Evidence) -> tuple[str, tuple[RemediationStep, ...]]:
    """Any other queue: are the consumers running and keeping up."""
    root = (
        f"Work is backing up for {f.service} ({ev.lead}): items arrive faster than "
        "consumers process them. A backlog is usually a symptom of consumers that fail, "
        "slow down or stopped, or of a burst of input."
    )
    steps = steps_of(
        link_step(f),
        make_step(
            "Check whether the consumers are running and what errors they log in the same minutes."
        ),
        make_step(
            "Compare the input rate with the processing rate: more input means scale out; "
            "less processing means the consumers are the problem."
        ),
        make_step("Look for a message that fails repeatedly and blocks the rest; set it aside."),
        make_step("Scale consumers out once they are healthy, until the lag falls."),
    )
    return root, steps


def playbook(f: Facts, ev: Evidence) -> Playbook:
    if f.queue_name:
        root, steps = _sqs(f, ev, f.queue_name)
    else:
        root, steps = _other_queue(f, ev)
    return Playbook(
        root_cause=root,
        hypothesis=f"A backlog on {f.service}: consumers fall behind the input.",
        impact=(
            f"Work queued on {f.service} is delayed rather than lost, as long as messages stay "
            "within the retention period; anything users wait on downstream (emails, orders, "
            "updates) arrives late."
        ),
        stakes=("work is delayed, not lost, as long as messages stay within the retention period"),
        outage=False,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            "Are the consumers running and succeeding?",
            "Is the input rate up, or the processing rate down?",
            "How close the oldest message is to the retention period",
        ),
    )
