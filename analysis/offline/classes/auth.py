"""Authentication and permission failures. The text branches on what was refused: an IAM
denial names principal, action and resource (and can be simulated), an expired token points at
where credentials are refreshed, a database login at the password's source.
"""

from __future__ import annotations

import re

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    cap,
    find_name,
    iso,
    make_step,
    recent_changes_step,
    region_flag,
    sh,
    steps_of,
)
from analysis.offline.facts import (
    DB_ROLE,
    Facts,
)
from analysis.offline.model import Evidence, Playbook

_IAM_DENIAL = re.compile(
    r"User: (arn:aws[\w-]*:(?:iam|sts)::\d{12}:[\w+=,.@/-]{1,200}) is not authorized to perform: "
    r"([\w-]+:\w+)(?: on resource: \"?(arn:[^\s\"]{1,200}))?"
)
_ASSUMED_ROLE = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/")
_EXPIRED = re.compile(r"ExpiredToken|token (?:included in the request )?is expired", re.IGNORECASE)
_DB_PASSWORD = re.compile(r"password authentication failed|Access denied for user", re.IGNORECASE)


def _iam_denial(
    f: Facts, denial: re.Match[str]
) -> tuple[str, tuple[RemediationStep, ...], str, str, tuple[str, ...]]:
    """IAM refused an action: name the principal, action and resource, and simulate the policy."""
    principal = denial.group(1)
    action = denial.group(2)
    resource = denial.group(3)
    assumed = _ASSUMED_ROLE.match(principal)
    policy_source = (
        f"arn:{assumed.group(1)}:iam::{assumed.group(2)}:role/{assumed.group(3)}"
        if assumed
        else principal
    )
    role_name = assumed.group(3) if assumed else principal.rsplit("/", 1)[-1]
    on = f" on `{resource}`" if resource else ""
    runs_as = f", the role {f.subject} runs as" if f.function_name else ""
    root = (
        f"IAM denied `{action}`{on} to `{role_name}`{runs_as}: its policies do not allow "
        "the call, so every request that needs it fails. Usually a policy was changed or "
        "detached, the code started calling a new action or resource, or a permissions "
        "boundary, SCP, resource policy or KMS key policy denies it."
    )
    steps = steps_of(
        make_step(
            "Ask IAM which policy decides, for exactly this call.",
            f"aws iam simulate-principal-policy --policy-source-arn {sh(policy_source)} "
            f"--action-names {action}" + (f" --resource-arns {sh(resource)}" if resource else ""),
        ),
        make_step(
            f"Look for recent changes to the role `{role_name}`.",
            f"aws cloudtrail lookup-events --lookup-attributes AttributeKey=ResourceName,"
            f"AttributeValue={sh(role_name)} --start-time {iso(f.day_before)} "
            f"--max-results 50 --query 'Events[].[EventTime,EventName,Username]' "
            f"--output table{region_flag(f)}",
        ),
        make_step(
            "If the simulation allows the call, the denial comes from elsewhere: a resource "
            "policy (bucket, key, queue), an SCP or a permissions boundary."
        ),
        make_step(
            f"Grant `{action}` on the narrowest resource the code needs, and redeploy the "
            "policy through the same pipeline that manages it, so the fix is not overwritten."
        ),
    )
    who = f"`{role_name}`"
    denied = f"Every `{action}` call by `{role_name}`{on}"
    checks = (
        f"Whether a policy granting `{action}` was recently removed from `{role_name}`",
        f"Whether a resource policy{' on `' + resource + '`' if resource else ''}, an SCP "
        "or a permissions boundary denies it",
        "Whether the code started calling a new action or resource in a recent deploy",
    )
    return root, steps, who, denied, checks


def _expired_token(
    f: Facts, ev: Evidence, checks: tuple[str, ...]
) -> tuple[str, tuple[RemediationStep, ...], str, str, tuple[str, ...]]:
    """Credentials expired: the fix is where they are refreshed, not the policy."""
    root = (
        f"{cap(f.service)} is using expired AWS credentials ({ev.lead}): temporary "
        "credentials were not refreshed, typically because the process caches a session "
        "beyond its lifetime or the role session duration is shorter than the job."
    )
    steps = steps_of(
        make_step(
            "Check which identity the process resolves to, from where it runs.",
            "aws sts get-caller-identity",
        ),
        make_step(
            "Make the client refresh credentials (create SDK clients from the default "
            "provider chain instead of caching a session), or lengthen the role's maximum "
            "session duration if a single job outlives it."
        ),
    )
    who = f.service
    denied = f"Every AWS call {f.service} makes with the expired credentials"
    return root, steps, who, denied, checks


def _database_password(
    f: Facts, ev: Evidence, checks: tuple[str, ...]
) -> tuple[str, tuple[RemediationStep, ...], str, str, tuple[str, ...]]:
    """The database refused the login: the user's password or its source changed."""
    role = find_name(DB_ROLE, f.evidence, 63)
    role_text = f"`{role}`" if role else "the application's user"
    root = (
        f"The database rejects the credentials of {role_text} ({ev.lead}): the password "
        "the application uses no longer matches, most often after a secret rotation that "
        "the running application has not picked up, or a changed user."
    )
    steps = steps_of(
        make_step(
            "Check when the secret last rotated and whether rotation succeeded.",
            "aws secretsmanager list-secrets --query 'SecretList[].[Name,LastRotatedDate,"
            f"LastChangedDate]' --output table{region_flag(f)}",
        ),
        make_step(
            "Restart or redeploy the application so it reads the current secret; make it "
            "re-read the secret on authentication failure so the next rotation is seamless."
        ),
        make_step(f"Confirm {role_text} can log in with the current secret from an admin session."),
    )
    who = role_text
    denied = f"Every database login as {role_text}"
    return root, steps, who, denied, checks


def _other_denial(
    f: Facts, ev: Evidence, checks: tuple[str, ...]
) -> tuple[str, tuple[RemediationStep, ...], str, str, tuple[str, ...]]:
    """A denial the text does not detail: find who was refused what."""
    root = (
        f"{cap(f.service)} is being refused for lack of authentication or permission "
        f"({ev.lead}): a credential expired or was rotated, or a permission was removed. "
        "Retrying will not help until the credential or policy is fixed."
    )
    steps = steps_of(
        make_step(
            "Identify the caller and the target of the refused call (the full error, the "
            "request's identity) and check when the credential it uses last changed."
        ),
        recent_changes_step(f),
        make_step(
            "Rotate or restore the credential, or restore the permission, through the "
            "pipeline that manages it."
        ),
    )
    who = f.service
    denied = f"Every call from {f.service} that needs the refused credential or permission"
    return root, steps, who, denied, checks


def playbook(f: Facts, ev: Evidence) -> Playbook:
    denial = _IAM_DENIAL.search(f.evidence)
    checks: tuple[str, ...] = (
        "The exact principal, credential and action that were refused",
        f"IAM, secret or key-policy changes just before {f.since}",
        "Whether it fails for every request or only for some resources",
    )
    if denial:
        root, steps, who, denied, checks = _iam_denial(f, denial)
    elif _EXPIRED.search(f.evidence):
        root, steps, who, denied, checks = _expired_token(f, ev, checks)
    elif _DB_PASSWORD.search(f.evidence):
        root, steps, who, denied, checks = _database_password(f, ev, checks)
    else:
        root, steps, who, denied, checks = _other_denial(f, ev, checks)
    return Playbook(
        root_cause=root,
        hypothesis=f"Authentication or permission failure for {who}.",
        impact=(
            f"{denied} fails, deterministically: retries will not recover it, and any feature "
            "that depends on it is down until it is fixed."
        ),
        stakes=(
            "denied calls fail every time, and retries will not help until the permission or "
            "credential is fixed"
        ),
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=checks,
    )
