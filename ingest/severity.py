"""Each sender's severity vocabulary, folded into the four levels the product works with."""

from __future__ import annotations

import math
import re

from incidents.models import Severity

_WORDS: dict[str, Severity] = {}
for _severity, _words in {
    Severity.CRITICAL: (
        "critical crit fatal emergency emerg panic disaster blocker page p0 p1 sev0 sev1 s0 s1 "
        "highest urgent"
    ),
    Severity.HIGH: "high error err major severe alert p2 sev2 s2 alarm",
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
_SEPARATORS = re.compile(r"[\s_-]+")
_NUMBER = re.compile(r"[0-9]{1,9}")
_LEVEL = r"(critical|crit|high|medium|low|warning|warn|error|info|fatal|p[0-5]|sev[\s_-]?[0-5])"
# Stated outright: `[P1] DB down`, `[HIGH] backlog`, `severity=low`, `priority: P3`.
_EXPLICIT = re.compile(
    rf"\[\s*{_LEVEL}\s*\]|\b(?:severity|sev|priority|prio|level)\s*[=:]\s*{_LEVEL}\b",
    re.IGNORECASE,
)
# Tagged as a word of its own: `api-5xx-critical`, `prod/sev2/db`. Only words that can mean
# nothing but a severity: `high` and `low` describe the condition far more often
# (`low-disk-space`, `HighCPUUtilization`) and would demote or promote it wrongly.
_TAG = re.compile(r"(?<![a-z0-9])(critical|crit|warning|p[0-5]|sev[_-]?[0-5])(?![a-z0-9])", re.I)


def severity_from(value: object) -> Severity | None:
    """Read a severity from a sender's own field: `P2`, `critical`, `Sev-1`, `3`, `warning`,
    `High Priority`...

    None when the value says nothing we recognise, so the caller can fall back to its
    format's default rather than guessing.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON's Infinity and NaN parse to floats that int() refuses
    if isinstance(value, int | float):
        return _NUMERIC.get(int(value), Severity.LOW) if value >= 0 else None
    if not isinstance(value, str):
        return None
    lowered = value.strip().lower()
    compact = _SEPARATORS.sub("", lowered)
    if not compact:
        return None
    if compact in _WORDS:
        return _WORDS[compact]
    if _NUMBER.fullmatch(compact):
        # ASCII digits only, and few: `"²".isdigit()` is true and int() refuses 5,000 digits.
        return severity_from(int(compact))
    # Word by word on the spaced text, so that `High Priority` and `1 - Critical` still read.
    for token in _TOKEN.findall(lowered):
        if token in _WORDS:
            return _WORDS[token]
    return None


def severity_marker(*texts: str | None) -> Severity | None:
    """A severity tagged into a name or description: `api-5xx-critical`, `[P1] DB down`,
    `severity=high`. CloudWatch sends no severity of its own, so teams encode it there."""
    for text in texts:
        if not text:
            continue
        explicit = _EXPLICIT.search(text)
        if explicit:
            return severity_from(explicit.group(1) or explicit.group(2))
        tag = _TAG.search(text)
        if tag:
            return severity_from(tag.group(1))
    return None
