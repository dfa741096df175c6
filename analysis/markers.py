"""The marker a secret becomes, `[REDACTED:<kind>]`, and the lower-casing the rules match on."""

from __future__ import annotations

import re
import string

MARKER = re.compile(r"\[REDACTED:[a-z0-9_]+\]")


MARKER_PREFIX = "[REDACTED:"


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only: `str.lower` can change the length of non-ASCII text
    (`İ` becomes two characters), and the lower-cased copy must align with the original."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
