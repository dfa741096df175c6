"""The per-kind secret corpus (tests/fixtures/secrets/): every sample of every kind is redacted,
in every alert shape it comes in, and the look-alikes come out unchanged.

The samples come from the public test data of gitleaks, trufflehog and detect-secrets, and from
the providers' documented formats (the corpus's README says which for each kind). A secret
counts as leaked when any 9-character piece of it is left (`bench.redaction.leaked`), so a
token cut in half by a marker is still a leak. bench/redaction.py measures the same corpus and
prints recall per kind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from analysis.redaction import KINDS, redact
from analysis.redaction_json import redact_json
from bench.redaction import leaked

SECRETS = Path(__file__).resolve().parent.parent / "fixtures" / "secrets"
MARKER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


KIND_FILES = sorted(p for p in SECRETS.glob("*.json") if p.name != "not_secrets.json")
CASES = [(load(p)["kind"], case) for p in KIND_FILES for case in load(p)["cases"]]
LOOKALIKES: list[dict[str, str]] = load(SECRETS / "not_secrets.json")["cases"]


def case_id(kind: str, case: dict[str, Any]) -> str:
    return f"{kind}:{case['secret'][:24]}"


def test_the_corpus_is_well_formed_and_covers_the_kinds_issue_14_names() -> None:
    kinds = {kind for kind, _ in CASES}
    for name in (
        "sendgrid azure_storage google_oauth mailgun mailchimp pypi shopify digitalocean linear "
        "pulumi doppler terraform_cloud heroku databricks planetscale square grafana discord "
        "github gitlab npm huggingface twilio datadog azure_ad_client_secret telegram sentry "
        "cli_credentials connection_string keyword_entropy"
    ).split():
        assert name in kinds, name
    for path in KIND_FILES:
        document = load(path)
        assert document["kind"] == path.stem
        assert document["sources"], path.name
        assert len(document["cases"]) >= 3, path.name
    for kind, case in CASES:
        assert case["secret"] in case["text"], case_id(kind, case)
        assert all(word in case["text"] for word in case["keep"]), case_id(kind, case)
    assert len(LOOKALIKES) >= 40


@pytest.mark.parametrize(("kind", "case"), CASES, ids=[case_id(k, c) for k, c in CASES])
def test_every_sample_is_redacted_and_its_context_kept(kind: str, case: dict[str, Any]) -> None:
    redacted = redact(case["text"])

    assert not leaked(case["secret"], case["text"], redacted), redacted
    assert [w for w in case["keep"] if w not in redacted] == [], redacted
    assert set(MARKER.findall(redacted)) <= KINDS
    assert redact(redacted) == redacted


@pytest.mark.parametrize(("kind", "case"), CASES, ids=[case_id(k, c) for k, c in CASES])
def test_every_sample_is_redacted_inside_a_serialised_payload(
    kind: str, case: dict[str, Any]
) -> None:
    """As the evidence carries an alert's raw payload: a JSON string inside JSON."""
    raw = json.dumps({"message": case["text"]}, ensure_ascii=False)

    sent = json.dumps(redact_json({"raw_payload": raw}), ensure_ascii=False)

    escaped = json.dumps(json.dumps(case["secret"])[1:-1])[1:-1]
    original = json.dumps({"raw_payload": raw}, ensure_ascii=False)
    assert not leaked(escaped, original, sent), sent


@pytest.mark.parametrize("case", LOOKALIKES, ids=[c["text"][:40] for c in LOOKALIKES])
def test_look_alikes_come_out_unchanged(case: dict[str, str]) -> None:
    assert redact(case["text"]) == case["text"], case["reason"]
