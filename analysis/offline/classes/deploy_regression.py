"""Deploy regressions. A code-level error or an error that starts with a release points at the
change; the text names the version when the alert does, and rollback comes first.
"""

from __future__ import annotations

import re

from analysis.offline.commands import (
    alarm_history_step,
    find_name,
    make_step,
    recent_changes_step,
    region_flag,
    sh,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import QUOTE_CHARS, Evidence, Playbook

CODE_ERROR = re.compile(
    r"\b((?:ReferenceError|TypeError|NameError|AttributeError|ImportError|ModuleNotFoundError|"
    r"NoSuchMethodError|ClassNotFoundException|NoClassDefFoundError|NullPointerException|"
    r"SyntaxError|KeyError|Runtime\.ImportModuleError|Runtime\.HandlerNotFound)\b:?[^\n]{0,80})"
)


_VERSION = re.compile(
    r"\b(v\d+(?:\.\d+){1,3}(?:-[\w.]+)?)\b|\bversion[\s:=]+(\d[\w.+-]{0,39})", re.IGNORECASE
)


def playbook(f: Facts, ev: Evidence) -> Playbook:
    code_error = find_name(CODE_ERROR, f.evidence, QUOTE_CHARS)
    if code_error:
        root = (
            f"`{code_error}` is a code-level error, not an infrastructure failure: the running "
            "code is broken on this path. Errors of this kind almost always arrive with a "
            "change (new code, a missing dependency, changed configuration), so the most "
            "recent release is the first suspect."
        )
    else:
        version = find_name(_VERSION, f.evidence, 40)
        change = f"the release of `{version}`" if version else "a recent deploy or release"
        root = (
            f"The failures line up with a change ({ev.lead}): {change} most likely introduced "
            f"a regression in {f.service}. Until the change is ruled out, treat it as the "
            "cause."
        )
    version_step = (
        make_step(
            f"List the recent versions of `{f.function_name}` and when they were published.",
            f"aws lambda list-versions-by-function --function-name {sh(f.function_name)} "
            f"--query 'Versions[-3:].[Version,LastModified,Description]' --output table"
            f"{region_flag(f)}",
        )
        if f.function_name
        else make_step(
            f"Find the last deploy of {f.service} in the CI/CD history or release log and "
            f"compare its time with the first error at {f.occurred_at:%H:%M} UTC."
        )
    )
    steps = steps_of(
        version_step,
        make_step(
            "If the errors started within minutes of a deploy, roll back first: it is the "
            "fastest way to confirm the cause and restore service."
            + (
                " Point the alias the trigger uses back at the previous version."
                if f.function_name
                else ""
            )
        ),
        recent_changes_step(f),
        make_step(
            "Diff the release: dependencies, configuration and environment variables, not "
            "just code."
        ),
        make_step("Add a test or a canary check that would have caught this error before release."),
    )
    return Playbook(
        root_cause=root,
        hypothesis=f"A regression from a recent deploy to {f.service}.",
        impact=(
            f"Every request to {f.service} that takes the broken code path fails the same way "
            "until the change is rolled back or fixed; paths the change did not touch keep "
            "working."
        ),
        stakes="requests on the broken code path fail every time until the change is reverted",
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            f"What was deployed in the hour before {f.since}",
            "Whether the error appears on every request or only on one path",
            "Whether rolling back is safe (schema migrations, data written by the new version)",
        ),
    )
