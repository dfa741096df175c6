"""What the outbound channels may say of a URL: whether it is one to link to, and the part of
it an error may name. Webhook and events URLs carry secrets in their path or query, so an
error names only scheme, host and port."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_https(url: str | None) -> bool:
    """Only an https URL with a host becomes a link or a button."""
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.netloc)


def origin(url: str) -> str:
    """Scheme, host and port: never the credentials, path or query."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port: the host alone still says where
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"
