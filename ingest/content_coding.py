"""A body's `Content-Encoding`, undone here rather than by aiohttp, with a bound.

aiohttp inflates a request body as it reads it, without a limit on the inflated size or the
time taken, and a body that does not inflate escapes the handler as `RequestPayloadError`
(a 500, then a broken keep-alive connection). The receiver therefore turns that off and hands
the body as received to the parse thread, which inflates it here: at most `limit` bytes come
out (zlib's `max_length`), so the work is linear in at most 1 MiB in and 1 MiB out, and a
bomb stops at the limit instead of running on. A body that does not inflate is a `ParseError`
with the reason and is kept as it came; one that inflates past the limit is refused (413).
"""

from __future__ import annotations

import zlib

from ingest.parsers.base import ParseError

SUPPORTED = ("gzip", "x-gzip", "deflate", "identity")
GZIP = 16 + zlib.MAX_WBITS


class InflatedTooLargeError(Exception):
    """The body inflates past the payload limit: refused whole, as a body sent that large."""


def codings(header: str | None) -> list[str]:
    """The codings a `Content-Encoding` header lists, in the order they were applied."""
    if not header:
        return []
    return [token.strip().lower() for token in header.split(",") if token.strip()]


def unsupported(header: str | None) -> list[str]:
    """The codings the receiver cannot undo (`br`, a typo): answered 415 before reading."""
    return [coding for coding in codings(header) if coding not in SUPPORTED]


def decode_content(body: bytes, header: str | None, limit: int) -> bytes:
    """`body` with its codings undone, last applied first. Raises ParseError when a layer does
    not inflate and InflatedTooLargeError past `limit` bytes."""
    for coding in reversed(codings(header)):
        if coding in ("gzip", "x-gzip"):
            body = inflate(body, GZIP, limit, "body", f"Content-Encoding {coding}")
        elif coding == "deflate":
            # RFC 9110 deflate is a zlib stream; some senders send raw deflate instead.
            wbits = zlib.MAX_WBITS if _is_zlib_header(body) else -zlib.MAX_WBITS
            body = inflate(body, wbits, limit, "body", f"Content-Encoding {coding}")
        elif coding != "identity":
            raise ParseError(f"Content-Encoding {coding!r} is not supported")
    return body


def _is_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def inflate(data: bytes, wbits: int, limit: int, what: str, kind: str) -> bytes:
    """`data` inflated (zlib's `wbits`: GZIP, zlib or raw deflate) to at most `limit` bytes:
    the one bounded inflater of the ingest path, for request bodies and for the compressed
    `data` of CloudWatch Logs alike. Raises ParseError naming `what` and `kind` when the data
    does not inflate, is cut short or has bytes after its end, and InflatedTooLargeError
    past `limit` (zlib's `max_length`: a bomb stops there instead of running on)."""
    inflater = zlib.decompressobj(wbits)
    try:
        raw = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ParseError(f"{what} is not {kind}: {exc}") from exc
    if len(raw) > limit or inflater.unconsumed_tail:
        raise InflatedTooLargeError(f"{what} inflates past {limit} bytes as {kind}; split it")
    if not inflater.eof:
        # A cut stream inflates without complaint; say so rather than "not JSON" later.
        raise ParseError(f"{what} is truncated: its {kind} stream does not end")
    if inflater.unused_data:
        raise ParseError(f"bytes after the end of the {kind} stream of the {what}")
    return raw
