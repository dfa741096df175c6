"""The offline analyzer: diagnoses an incident when Claude cannot.

It runs when no ANTHROPIC_API_KEY is set or Claude is unavailable, and it is the first analysis
a quick-start user ever sees, so it reads like a calm senior SRE's first take: specific to the
alert, with commands that paste, and honest about how little a rule knows.

The failure knowledge is data (`library/*.yaml`: failure classes and vendor error signatures,
validated by `signatures.py`); what stays code is fact extraction (`facts.py`), scoring
(`scoring.py`), command templating (`commands.py`, `template.py`), the first step per kind of
alert (`kinds.py`) and one module per failure class whose text branches on facts
(`classes/`). See docs/offline-analyzer.md.
"""

from analysis.offline.assemble import diagnose
from analysis.offline.model import MAX_CONFIDENCE, MIN_CONFIDENCE
from analysis.offline.rulebase import CLASSES, RULES, SIGNATURES, UNKNOWN

__all__ = [
    "CLASSES",
    "MAX_CONFIDENCE",
    "MIN_CONFIDENCE",
    "RULES",
    "SIGNATURES",
    "UNKNOWN",
    "diagnose",
]
