"""The offline analyzer on real incident texts it has never seen: how often it names the
right failure class (or a plausible first hypothesis), how often it abstains, and whether
its first step is specific and comes with a command.

The texts are quoted from public post-mortems, status pages and incident issues
(bench/data/offline_eval.yaml, with their sources); the signature library was written from
vendor documentation only, so this measures generalisation, not recall of its own sources.
Each text is sent as the custom JSON a status-page or chat integration would send.

    python bench/offline_eval.py                      # the analyzer in this tree
    python bench/offline_eval.py --module old.py      # another version, e.g. main's:
    git show main:analysis/offline.py > /tmp/offline_main.py
    python bench/offline_eval.py --module /tmp/offline_main.py

Targets (issue 15): right or plausible at least 60 %, abstains at most 30 %, a specific first
step with a command every time. An abstention's first step is the one for the alert's kind
(`analysis.offline.kinds`), so the figure is reported apart for the answered cases and the
abstentions, and for the abstentions whether that kind has a step of its own (CPU, memory,
5xx, queue, ...) or got the catch-all "read the first error lines".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.context import AnalysisContext  # noqa: E402
from analysis.models import Diagnosis  # noqa: E402
from analysis.offline.facts import read_facts  # noqa: E402
from analysis.offline.kinds import kind_of  # noqa: E402
from incidents.models import Alert, Incident  # noqa: E402
from ingest.normalize import parse_body  # noqa: E402
from tests.conftest import T0  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "offline_eval.yaml"
TARGET_RIGHT = 0.60
TARGET_ABSTAIN = 0.30
# First steps that fit any alert and therefore say nothing about this one.
GENERIC_MARKERS = ("describe-alarm-history", "cloudtrail lookup-events", "AWS Health")
# Kinds of alert whose first step is the catch-all one (the first error lines, or the alarm's
# metric graphed): a step with a command, but not one chosen for what the alert is about.
CATCH_ALL_KINDS = ("errors", "log", "generic")

Diagnose = Callable[[Incident, Alert, AnalysisContext], tuple[Diagnosis, str]]


@dataclass(frozen=True)
class Case:
    """One quoted text, where it comes from, and what a good first answer would be."""

    id: str
    source: str
    title: str
    text: str
    failure_class: str
    plausible: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What the analyzer said about one case, reduced to the three figures."""

    case: Case
    name: str
    right: bool
    plausible: bool
    specific_first_step: bool
    kind_has_own_step: bool

    @property
    def abstained(self) -> bool:
        return self.name == "unknown"


def load_cases(path: Path = DATA) -> list[Case]:
    """The evaluation set, as written in the YAML file."""
    entries: list[dict[str, Any]] = yaml.safe_load(path.read_text())
    return [
        Case(
            id=e["id"],
            source=e["source"],
            title=e["title"],
            text=e["text"],
            failure_class=e["class"],
            plausible=tuple(e.get("plausible") or ()),
        )
        for e in entries
    ]


def load_diagnose(module: Path | None) -> Diagnose:
    """This tree's analyzer, or the `diagnose` of another version's module file."""
    if module is None:
        from analysis.offline import diagnose

        return diagnose
    spec = importlib.util.spec_from_file_location("offline_under_test", module)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {module}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses look their module up while it loads
    spec.loader.exec_module(loaded)
    found: Diagnose = loaded.diagnose
    return found


def incident_of(alert: Alert) -> Incident:
    """A fresh incident for the alert, as the lifecycle opens one on a first alert."""
    return Incident(
        id="INC-EVAL0001",
        fingerprint="0" * 16,
        title=alert.title,
        source=alert.source,
        resource=alert.resource,
        severity=alert.severity,
        opened_at=alert.occurred_at,
        last_seen_at=alert.occurred_at,
    )


def evaluate(case: Case, diagnose: Diagnose) -> Outcome:
    """Run one case through the analyzer as a custom JSON alert."""
    payload = {"source": "statuspage", "title": case.title, "message": case.text}
    alert = parse_body(json.dumps(payload).encode(), T0).alerts[0]
    incident = incident_of(alert)
    diagnosis, name = diagnose(incident, alert, AnalysisContext())
    first = diagnosis.remediation_steps[0] if diagnosis.remediation_steps else None
    command = first.command if first else None
    specific = bool(command) and not any(m in (command or "") for m in GENERIC_MARKERS)
    return Outcome(
        case=case,
        name=name,
        right=name == case.failure_class,
        plausible=name in case.plausible,
        specific_first_step=specific,
        kind_has_own_step=kind_of(read_facts(incident, alert, AnalysisContext()))
        not in CATCH_ALL_KINDS,
    )


def report(outcomes: list[Outcome], verbose: bool) -> bool:
    """Print the figures (and each case with --verbose); True when every target is met."""
    total = len(outcomes)
    right = sum(o.right for o in outcomes)
    plausible = sum(o.plausible and not o.right for o in outcomes)
    answered = [o for o in outcomes if not o.abstained]
    abstentions = [o for o in outcomes if o.abstained]
    specific = sum(o.specific_first_step for o in answered)
    with_command = sum(o.specific_first_step for o in abstentions)
    for_kind = sum(o.specific_first_step and o.kind_has_own_step for o in abstentions)
    if verbose:
        for o in outcomes:
            mark = "right" if o.right else "plausible" if o.plausible else "-"
            print(f"{o.case.id:40} {o.case.failure_class:18} -> {o.name:18} {mark}")
    share_right = (right + plausible) / total
    share_abstain = len(abstentions) / total
    print(f"cases: {total}")
    print(f"right class: {right}, plausible first hypothesis: {plausible}")
    print(f"right or plausible: {share_right:.0%} (target at least {TARGET_RIGHT:.0%})")
    print(
        f"abstained: {len(abstentions)} = {share_abstain:.0%} (target at most {TARGET_ABSTAIN:.0%})"
    )
    print(
        f"answered: specific first step with a command: {specific} of {len(answered)} = "
        f"{_share(specific, len(answered))} (target 100%)"
    )
    print(
        f"abstentions: a first step with a command, not a generic one: {with_command} of "
        f"{len(abstentions)}; "
        f"a step for the alert's kind: {for_kind} = {_share(for_kind, len(abstentions))}, "
        "the others the catch-all first error lines or metric graph"
    )
    every_step = specific == len(answered) and with_command == len(abstentions)
    return share_right >= TARGET_RIGHT and share_abstain <= TARGET_ABSTAIN and every_step


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", type=Path, help="another offline analyzer module file")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    diagnose = load_diagnose(args.module)
    outcomes = [evaluate(case, diagnose) for case in load_cases()]
    met = report(outcomes, args.verbose)
    print("targets met" if met else "targets NOT met")


if __name__ == "__main__":
    main()
