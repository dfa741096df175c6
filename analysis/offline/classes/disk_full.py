"""Disk full. RDS storage, a Lambda function's /tmp and a host's volumes fill for different
reasons and are freed differently, so the text branches on which one the alert names.
"""

from __future__ import annotations

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    dim,
    logs_command,
    make_step,
    metric_command,
    region_flag,
    sh,
    ssm_command,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook


def _rds(
    f: Facts, ev: Evidence, instance_name: str
) -> tuple[str, tuple[RemediationStep, ...], str]:
    """An RDS instance: storage, autoscaling and what holds WAL."""
    db = sh(instance_name)
    root = (
        f"RDS instance `{instance_name}` is running out of storage ({ev.lead}). At zero it "
        "goes into storage-full and stops accepting writes. On RDS the usual growth is "
        "data itself, write-ahead logs kept by an inactive replication slot, or logs and "
        "temporary files from a heavy query."
    )
    steps = steps_of(
        make_step(
            "Graph FreeStorageSpace to see how fast it falls and so how much time is left.",
            metric_command(
                f,
                "AWS/RDS",
                "FreeStorageSpace",
                dim("DBInstanceIdentifier", instance_name),
                "Minimum",
            ),
        ),
        make_step(
            "Read the allocated storage and whether storage autoscaling is on "
            "(MaxAllocatedStorage).",
            f"aws rds describe-db-instances --db-instance-identifier {db} --query "
            "'DBInstances[0].{Allocated:AllocatedStorage,Max:MaxAllocatedStorage,"
            f"Type:StorageType}}'{region_flag(f)}",
        ),
        make_step(
            "If it will fill before the cause is fixed, grow it now (set NEW_GB above the "
            "current allocation) and turn on autoscaling with a ceiling.",
            f"aws rds modify-db-instance --db-instance-identifier {db} --allocated-storage "
            f'"$NEW_GB" --max-allocated-storage "$((NEW_GB * 2))" --apply-immediately'
            f"{region_flag(f)}",
        ),
        make_step(
            "On PostgreSQL, check for a replication slot holding WAL back: an inactive slot "
            "keeps every log segment since it stopped.",
            "SELECT slot_name, active, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), "
            "restart_lsn)) AS retained FROM pg_replication_slots;",
        ),
        make_step(
            "Find the largest tables and indexes, and whether one grew suddenly.",
            "SELECT relname, pg_size_pretty(pg_total_relation_size(relid)) FROM "
            "pg_catalog.pg_statio_user_tables ORDER BY pg_total_relation_size(relid) DESC "
            "LIMIT 10;",
        ),
    )
    stakes_where = f"`{instance_name}`"
    return root, steps, stakes_where


def _lambda_tmp(
    f: Facts, ev: Evidence, function_name: str
) -> tuple[str, tuple[RemediationStep, ...], str]:
    """A Lambda function: its /tmp (ephemeral storage) is what fills."""
    root = (
        f"Lambda function `{function_name}` filled its /tmp ({ev.lead}): files written "
        "there survive between invocations of the same execution environment, so anything "
        "not cleaned up accumulates until writes fail."
    )
    steps = steps_of(
        make_step(
            "Read the failing invocations to see what was being written.",
            logs_command(
                f, f.log_group or f"/aws/lambda/{function_name}", '"No space left on device"'
            ),
        ),
        make_step(
            "Delete temporary files at the end of each invocation (or use a fresh "
            "tempfile.TemporaryDirectory per invocation)."
        ),
        make_step(
            "If the work needs more scratch space, raise the function's ephemeral storage "
            "(up to 10240 MB).",
            f"aws lambda update-function-configuration --function-name {sh(function_name)} "
            f"--ephemeral-storage '{{\"Size\": 2048}}'{region_flag(f)}",
        ),
    )
    stakes_where = f"`{function_name}`"
    return root, steps, stakes_where


def _host(f: Facts, ev: Evidence) -> tuple[str, tuple[RemediationStep, ...], str]:
    """A host or volume: blocks or inodes, and what grew."""
    checks = ["df -h", "df -i", "du -xh / 2>/dev/null | sort -rh | head -20"]
    root = (
        f"A filesystem on {f.service} is full or nearly full ({ev.lead}). When it fills, "
        "writes fail: logs stop, databases refuse transactions, uploads and temp files "
        "error out. The usual culprits are logs without rotation, core dumps, a runaway "
        "temp directory, or data that simply grew."
    )
    steps = steps_of(
        make_step(
            "See which filesystem is full (space and inodes) and what fills it.",
            ssm_command(f, f.instance_id, checks) if f.instance_id else "; ".join(checks),
        ),
        make_step(
            "Free space safely first: rotate or compress logs, remove old core dumps and "
            "temp files; do not delete files a running process still holds open (check with "
            "`lsof +L1`)."
        ),
        make_step(
            f"If the data legitimately grew, enlarge the volume attached to `{f.instance_id}` "
            "and then the filesystem (growpart, resize2fs or xfs_growfs).",
            f"aws ec2 describe-volumes --filters Name=attachment.instance-id,Values="
            f"{sh(f.instance_id)} --query 'Volumes[].[VolumeId,Size,Attachments[0].Device]'"
            f"{region_flag(f)}",
        )
        if f.instance_id
        else make_step(
            "If the data legitimately grew, enlarge the volume and then the filesystem."
        ),
        make_step("Add log rotation or retention for whatever filled it, so it does not recur."),
    )
    stakes_where = f.service
    return root, steps, stakes_where


def playbook(f: Facts, ev: Evidence) -> Playbook:
    if f.db_instance:
        root, steps, stakes_where = _rds(f, ev, f.db_instance)
    elif f.function_name:
        root, steps, stakes_where = _lambda_tmp(f, ev, f.function_name)
    else:
        root, steps, stakes_where = _host(f, ev)
    return Playbook(
        root_cause=root,
        hypothesis=f"Storage exhaustion on {stakes_where}: writes fail once it fills.",
        impact=(
            f"Once storage on {stakes_where} is full, every write fails: requests that store "
            "anything error out, and logs stop just when they are needed. Until then it is a "
            "countdown, and the trend says how long."
        ),
        stakes=(
            "a full disk stops writes outright; until it fills it is a countdown, and the "
            "trend says how long"
        ),
        outage=False,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            "How much space is left and how fast it falls: hours or weeks?",
            "What grew: data, logs, WAL, temp files?",
            "Whether writes are already failing",
        ),
    )
