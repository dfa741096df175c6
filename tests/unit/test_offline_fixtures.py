"""The offline analyzer's cases as data: every `tests/fixtures/offline/<class>/*.yaml` holds a
payload as its sender sends it, the class it must be diagnosed as, and strings the diagnosis
must mention (in its text or its commands). Adding a case is adding a file.

The signature library is checked here too: it loads, every signature's class exists, and
every discriminating check and remediation step (and every class's first check) renders
through the real renderer, with no value known, to a command without a placeholder; every
`{name}` it uses is a value the renderer fills or a named group of the signature's patterns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis.context import AnalysisContext
from analysis.models import Diagnosis
from analysis.offline import CLASSES, MAX_CONFIDENCE, MIN_CONFIDENCE, SIGNATURES, diagnose
from analysis.offline.facts import read_facts
from analysis.offline.signatures import Signature, Step
from analysis.offline.template import render_step, values
from incidents.lifecycle import IncidentService
from incidents.models import Incident
from ingest.normalize import parse_body
from tests.conftest import T0

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "offline"
# A template value left unfilled; the alert's own words (a Rust `None`) may be quoted.
PLACEHOLDER = re.compile(r"<[a-z_ -]+>|\{[a-z_]+\}")
FILES = sorted(CASES.glob("*/*.yaml"))


def everything(diagnosis: Diagnosis) -> list[str]:
    return [
        diagnosis.root_cause,
        diagnosis.impact,
        diagnosis.severity_justification,
        *diagnosis.check_first,
        *(a.hypothesis for a in diagnosis.alternatives),
        *(a.why_less_likely for a in diagnosis.alternatives),
        *(s.action for s in diagnosis.remediation_steps),
        *(s.command for s in diagnosis.remediation_steps if s.command),
    ]


def test_every_class_has_a_case() -> None:
    covered = {path.parent.name for path in FILES}
    assert {c.name for c in CLASSES} | {"unknown"} <= covered


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case(path: Path, service: IncidentService) -> None:
    case: dict[str, Any] = yaml.safe_load(path.read_text())
    assert path.parent.name == case["expect_class"], "a case lives under its class's folder"
    alert = parse_body(json.dumps(case["payload"]).encode(), T0).alerts[0]
    incident = service.record(alert).incident
    assert incident is not None

    diagnosis, name = diagnose(incident, alert, AnalysisContext())

    assert name == case["expect_class"]
    text = "\n".join(everything(diagnosis))
    for mention in case["mentions"]:
        assert mention.lower() in text.lower(), f"{mention!r} missing from the diagnosis"
    first = diagnosis.remediation_steps[0]
    assert first.command, "the first step always comes with a command"
    if name == "unknown":
        assert diagnosis.confidence == 0.1
    else:
        assert MIN_CONFIDENCE <= diagnosis.confidence <= MAX_CONFIDENCE
    for line in everything(diagnosis):
        assert not PLACEHOLDER.search(line), line


def test_an_exact_signature_is_more_confident_than_a_symptom(service: IncidentService) -> None:
    exact = parse_body(b'{"title": "x", "message": "accept4: too many open files"}', T0)
    symptom = parse_body(b'{"title": "Checkout errors", "message": "Error: 502"}', T0)
    results = []
    for parsed in (exact, symptom):
        alert = parsed.alerts[0]
        incident = service.record(alert).incident
        assert incident is not None
        results.append(diagnose(incident, alert, AnalysisContext())[0].confidence)
    assert results[0] >= 0.5 > results[1]


def test_the_library_is_large_documented_and_checkable() -> None:
    assert len(SIGNATURES) >= 150
    assert {s.domain for s in SIGNATURES} >= {
        "aws", "kubernetes", "linux", "databases", "runtimes", "tls", "dns", "cdn"
    }  # fmt: skip
    for signature in SIGNATURES:
        assert signature.source.startswith("https://"), signature.id
        assert signature.check.command.strip(), signature.id
        assert "\n" not in signature.cause, signature.id


# `render_step` fills this one itself (` --region <region>` or nothing), not from `values()`.
RENDERER_FIELDS = frozenset({"region_flag"})
TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


def _no_facts() -> dict[str, str | None]:
    """What `values()` gives for an alert that names nothing: no host, no region, no table."""
    alert = parse_body(b'{"title": "x", "message": "y"}', T0).alerts[0]
    incident = Incident(
        id="INC-EMPTY",
        fingerprint="0" * 16,
        title=alert.title,
        source=alert.source,
        resource=alert.resource,
        severity=alert.severity,
        opened_at=alert.occurred_at,
        last_seen_at=alert.occurred_at,
    )
    return values(read_facts(incident, alert, AnalysisContext()), ())


def _steps(signature: Signature) -> list[Step]:
    return [signature.check, *signature.remediation]


def _named_groups(signature: Signature) -> set[str]:
    return {name for p in signature.patterns for name in re.compile(p.regex).groupindex}


def test_every_library_step_renders_with_no_value_known_and_names_only_known_values() -> None:
    known = _no_facts()
    assert not known["region"] and not known["host"], "the empty alert must know nothing"
    steps = [(s.id, step, _named_groups(s)) for s in SIGNATURES for step in _steps(s)]
    steps += [(c.name, c.spec.first_check, set()) for c in CLASSES if c.spec.first_check]
    for owner, step, groups in steps:
        for text in (step.action, step.command or ""):
            unknown = set(TEMPLATE_FIELD.findall(text)) - known.keys() - groups - RENDERER_FIELDS
            assert not unknown, f"{owner}: {sorted(unknown)} is no value the renderer fills"
        rendered = render_step(step, known)  # no match either: its groups are unknown too
        for line in (rendered.action, rendered.command or ""):
            assert not PLACEHOLDER.search(line), f"{owner}: {line}"
        if step.command:
            assert rendered.command and rendered.command.strip(), owner
    assert all(render_step(s.check, known).command for s in SIGNATURES)


def test_the_template_check_catches_a_misspelt_value() -> None:
    """A `{namepsace}` would render as "$NAMEPSACE", a variable nobody sets: the check above
    must name it, even though the renderer turns it into something without braces."""
    known = _no_facts()
    step = Step(action="List the pods in {namespace}.", command="kubectl get pods -n {namepsace}")
    assert set(TEMPLATE_FIELD.findall(step.command or "")) - known.keys() == {"namepsace"}
    assert not PLACEHOLDER.search(render_step(step, known).command or "")
