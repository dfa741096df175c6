"""Each sender's severity vocabulary, folded into the four levels the product works with."""

from __future__ import annotations

import re

from incidents.models import Severity

_WORDS: dict[str, Severity] = {}
for _severity, _words in {
    Severity.CRITICAL: (
        "critical crit fatal emergency emerg panic disaster blocker p0 p1 sev0 sev1 s0 s1 "
        "highest urgent"
    ),
    Severity.HIGH: "high error err major severe alert page p2 sev2 s2 alarm",
    Severity.MEDIUM: "medium moderate warning warn minor average p3 sev3 s3",
    Severity.LOW: (
        "low lowest info informational information notice debug trace p4 p5 sev4 sev5 s4 s5 "
        "none ok unknown"
    ),
}.items():
    for _word in _words.split():
        _WORDS[_word] = _severity

_NUMERIC = {0: Severity.CRITICAL, 1: Severity.CRITICAL, 2: Severity.HIGH, 3: Severity.MEDIUM}
_TOKEN = re.compile(r"[a-z]+[0-9]?|[0-9]")
_MARKER = re.compile(
    r"(?:\[|\(|\b(?:severity|sev|priority|level)\s*[=:]\s*|^|[\s_/-])"
    r"(critical|crit|high|medium|low|warning|p[0-5]|sev[0-5])(?=$|[\]\)\s_/.-])",
    re.IGNORECASE,
)


def severity_from(value: object) -> Severity | None:
    """Read a severity from a sender's own field: `P2`, `critical`, `Sev-1`, `3`, `warning`...

    None when the value says nothing we recognise, so the caller can fall back to its
    format's default rather than guessing.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _NUMERIC.get(int(value), Severity.LOW) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace("-", "").replace(" ", "")
    if not text:
        return None
    if text in _WORDS:
        return _WORDS[text]
    if text.isdigit():
        return severity_from(int(text))
    for token in _TOKEN.findall(text):
        if token in _WORDS:
            return _WORDS[token]
    return None


def severity_marker(*texts: str | None) -> Severity | None:
    """A severity tagged into a name or description: `api-5xx-critical`, `[P1] DB down`,
    `severity=high`. CloudWatch sends no severity of its own, so teams encode it there."""
    for text in texts:
        if not text:
            continue
        match = _MARKER.search(text)
        if match:
            return severity_from(match.group(1))
    return None
