"""The offline analyzer's cases as data: every `tests/fixtures/offline/<class>/*.yaml` holds a
payload as its sender sends it, the class it must be diagnosed as, and strings the diagnosis
must mention (in its text or its commands). Adding a case is adding a file.

The signature library is checked here too: it loads, every signature's class exists, and
every discriminating check renders to a command without a placeholder.
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
from incidents.lifecycle import IncidentService
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
