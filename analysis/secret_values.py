"""Does a value look like a generated credential rather than a word, a name, an id or a path?

Used where a name only sometimes announces a secret (`key`, `auth`, `sig`, `credentials`): an
S3 object key, an auth mode or a message id under such a name must stay readable, a generated
token must not. The test is deliberately narrow, because precision is what keeps the analysis
useful:

- one token of token characters, 16 to 512 long (no spaces, braces or colons: structured
  values and prose are not credentials);
- not a UUID (an identifier in almost every alert), not a path (a `/` with a `.` or a leading
  `/`), not a dotted name (`checkout.api.internal`);
- the mix of a generated string: upper case, lower case and digits together (base62, base64);
  or hex of 20 characters or more, with letters and digits; or base32 with digits, of 16 or
  more;
- and a Shannon entropy of at least 3 bits per character, so `AAAAAAAAAAAAAAAA1a` is no key.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Final

_TOKEN: Final = re.compile(r"[A-Za-z0-9+/=_.~-]{16,512}")
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_HEX: Final = re.compile(r"[0-9a-fA-F]{20,}")
_BASE32: Final = re.compile(r"[A-Z2-7]{16,}=*")
_DOTTED_NAME: Final = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MIN_ENTROPY: Final = 3.0


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s own character distribution."""
    counts = Counter(value)
    size = len(value)
    return -sum(count / size * math.log2(count / size) for count in counts.values())


def looks_random(value: str) -> bool:
    """True when `value` has the shape and the disorder of a generated credential."""
    if _TOKEN.fullmatch(value) is None or _UUID.fullmatch(value) is not None:
        return False
    if value.startswith("/") or ("/" in value and "." in value):
        return False
    if _DOTTED_NAME.fullmatch(value) is not None and value.count(".") >= 2:
        return False
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    has_digit = any(c.isdigit() for c in value)
    generated = (
        (has_upper and has_lower and has_digit)
        or (_HEX.fullmatch(value) is not None and has_digit and (has_upper or has_lower))
        or (_BASE32.fullmatch(value) is not None and has_digit)
    )
    return generated and shannon_entropy(value) >= _MIN_ENTROPY
