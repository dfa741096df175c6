"""Redacting a JSON value: every string as by `analysis.redaction.redact`, and the structure used
as well, since a value under a secret-named key is a secret whatever it looks like."""

from __future__ import annotations

import functools
from typing import Any, Final

from analysis.markers import MARKER, marker
from analysis.redaction import PLAIN, is_kept, redact, redact_authorization
from analysis.secret_names import secret_kind

_PAIR_NAME_KEYS: Final = ("name", "Name", "key", "Key", "ParameterKey")


_PAIR_VALUE_KEYS: Final = frozenset({"value", "Value", "ParameterValue"})


def redact_json(value: Any, *, redact_ips: bool = False) -> Any:
    """A copy of a JSON value with every string redacted as by `redact`; the input is untouched.

    Structure helps beyond text: a value under a secret-named key (`password`, `api_key`,
    `client_secret`, `X-Amz-Security-Token`, `Cookie`...) is replaced whole even when it does
    not look like a token, numbers included, and so is the `value` of a `{"name": "DB_PASSWORD",
    "value": ...}` pair; an `Authorization` value keeps its scheme. Keys are kept, but a key
    that is itself a secret or an address is redacted like any string (a clash gets a `#2`
    suffix rather than losing a value).

    Walks with an explicit stack, so depth costs memory, not recursion; a sub-value shared by
    two parents is copied once, and a cycle cannot loop forever.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, str | None]] = [(value, root, 0, None)]
    copies: dict[tuple[int, str | None], Any] = {}
    texts: list[tuple[Any, Any, str]] = []  # (parent, slot, text): redacted together at the end
    while stack:
        item, parent, slot, kind = stack.pop()
        if not isinstance(item, dict | list | tuple):
            scalar = _redact_by_kind(item, kind)
            if isinstance(scalar, str) and not MARKER.fullmatch(scalar):
                texts.append((parent, slot, scalar))
            else:
                parent[slot] = scalar
            continue
        memo = (id(item), kind)
        if memo in copies:
            parent[slot] = copies[memo]
            continue
        if isinstance(item, dict):
            mapping: dict[Any, Any] = {}
            copies[memo] = parent[slot] = mapping
            pair_name = _pair_name(item, redact_ips)
            for key, child in item.items():
                new_key = _unique_key(mapping, key, redact_ips)
                mapping[new_key] = None
                stack.append((child, mapping, new_key, _child_kind(new_key, child, pair_name)))
        else:
            items: list[Any] = [None] * len(item)
            copies[memo] = parent[slot] = items
            # A list under a secret-named key is a list of secrets (`"passwords": [...]` is not
            # one, `"password": ["old", "new"]` is).
            stack.extend((child, items, index, kind) for index, child in enumerate(item))
    redacted = redact_many([text for _, _, text in texts], redact_ips=redact_ips)
    for (parent, slot, _), text in zip(texts, redacted, strict=True):
        parent[slot] = text
    return root[0]


def _child_kind(key: Any, child: Any, pair_name: str | None) -> str | None:
    """The secret kind of a value, from its (already redacted) key: deciding on the key as it
    comes out, not as it went in, gives a second pass the same answer."""
    value = child if isinstance(child, str) else ""
    if pair_name is not None and key in _PAIR_VALUE_KEYS:
        return secret_kind(pair_name, value)
    if not isinstance(key, str):
        return None
    return secret_kind(key, value)


def _pair_name(item: dict[Any, Any], redact_ips: bool) -> str | None:
    """The name of a `{"name": ..., "value": ...}` pair (ECS and Lambda environments, tags,
    CloudFormation parameters) as it comes out, or None: it decides whether the value is a
    secret, like a key does (`_child_kind`)."""
    if _PAIR_VALUE_KEYS.isdisjoint(item):
        return None
    name = next((item[k] for k in _PAIR_NAME_KEYS if isinstance(item.get(k), str)), None)
    return None if name is None else _redact_key(name, redact_ips)


@functools.lru_cache(maxsize=4096)
def _redact_key(key: str, redact_ips: bool) -> str:
    """Keys and pair names repeat across a document's alerts and across alerts (`labels`,
    `startsAt`, `DB_PASSWORD`), and redaction is a pure function: each distinct one is
    redacted once."""
    return redact(key, redact_ips=redact_ips)


def _unique_key(mapping: dict[Any, Any], key: Any, redact_ips: bool) -> Any:
    if not isinstance(key, str):
        return key
    new_key = _redact_key(key, redact_ips)
    suffix = 2
    unique = new_key
    while unique in mapping:
        unique = f"{new_key}#{suffix}"
        suffix += 1
    return unique


def _redact_by_kind(item: Any, kind: str | None) -> Any:
    """A scalar under a secret-named key, replaced whole (an `Authorization` value keeps its
    scheme); any other scalar as it is. A string that comes out still goes through `redact`."""
    if kind is not None and not isinstance(item, bool):
        if isinstance(item, int | float):
            return marker(kind)
        if isinstance(item, str):
            if kind == "authorization":
                return redact_authorization(item)
            if not is_kept(item):
                return marker(kind)
    return item


_SEPARATOR: Final = "\x1e"


_JOINT: Final = f"\n{_SEPARATOR}\n"


def redact_many(texts: list[str], *, redact_ips: bool = False) -> list[str]:
    """`[redact(t) for t in texts]`, faster.

    Why: a JSON alert is hundreds of short strings, and each rule costs a call whatever the
    length, so the strings are redacted as one text, joined by a line holding only a record
    separator. No rule matches across a line break and a record separator, so each piece comes
    out as it would alone; a piece whose joint a rule touched anyway (it would have to eat the
    line break) is redacted again alone, so the result never depends on the neighbours."""
    results = list(texts)
    joined = [i for i, text in enumerate(texts) if not PLAIN.fullmatch(text)]
    alone = [i for i in joined if _SEPARATOR in texts[i]]
    joined = [i for i in joined if _SEPARATOR not in texts[i]]
    if joined:
        pieces = redact(_JOINT.join(texts[i] for i in joined), redact_ips=redact_ips).split(
            _SEPARATOR
        )
        if len(pieces) != len(joined):
            alone.extend(joined)
        else:
            last = len(pieces) - 1
            for n, (index, piece) in enumerate(zip(joined, pieces, strict=True)):
                start = 1 if n else 0
                end = len(piece) - 1 if n < last else len(piece)
                intact = (not n or piece.startswith("\n")) and (n == last or piece.endswith("\n"))
                if intact and start <= end:
                    results[index] = piece[start:end]
                else:
                    alone.append(index)
    for index in alone:
        results[index] = redact(texts[index], redact_ips=redact_ips)
    return results
