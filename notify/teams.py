"""Microsoft Teams: an Adaptive Card posted to a Workflows incoming webhook, for teams that
watch Teams rather than Slack. A webhook post cannot be edited later, so an incident gets one
card with its analysis and, when it resolves, one short card saying so.

Alert and model text is untrusted, and a TextBlock (and a FactSet value) renders a Markdown
subset: links, bold, italics, lists. `escape_markdown` makes such text read as typed:

- Every character with a meaning there (`\\ * _ [ ] ( ) # < > ~ `` ` ``) is backslash-escaped,
  as CommonMark defines. Teams desktop and web honour the escapes; some mobile clients have
  shown the backslashes instead. That costs looks, never safety: because `(` is always
  preceded by a backslash, `](` never occurs in the output, so no renderer, escape-aware or
  not, can read a `[text](url)` link (nor a `[text][ref]` one) out of alert text. `&` is
  left alone: an entity such as `&lt;` can only ever become a character, never markup.
- A line that would start a list (`-`, `+`, `1.`, `1)`) has its marker escaped; every line
  becomes its own paragraph, since Markdown joins single line breaks.
- Bare URLs: `://` and `www.` get a zero-width space, so autolinkers see no URL. A bare domain
  (`evil.example`) may still be linkified by some clients, but such a link shows its own
  target, so it cannot pose as something else. Commands are the exception: they keep their
  URLs intact, because a command copied from the card must run as written, and an invisible
  character in it would break it in a way nobody could see.
- `{{` gets a zero-width space too, so Adaptive Cards' `{{DATE(...)}}` functions never run.

Teams refuses a message over about 28 KB. Fields are cut first, then whole sections and steps
are left out from the end until the card fits, and the card then says that the full analysis
is in Slack. The size is measured on the very bytes that are sent.

The webhook URL carries its signature in the query: errors and logs name only its scheme and
host, and anything Teams answers is scrubbed of the URL's secret parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from analysis.models import Analysis
from incidents.lifecycle import short_duration
from incidents.models import Incident, Severity
from notify.outbox import DeliveryError
from notify.urls import is_https, origin

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
# Teams' documented message limit; the card is built to stay clearly under it.
MESSAGE_LIMIT = 28_000
CARD_BUDGET = 26_000
TITLE_LIMIT = 300
FACT_LIMIT = 200
SECTION_LIMIT = 2000
STEP_LIMIT = 1000
COMMAND_LIMIT = 1500
CUT_NOTE = "Cut to fit Teams' message size limit: the full analysis is in the Slack thread."
_COLORS = {
    Severity.CRITICAL: "Attention",
    Severity.HIGH: "Attention",
    Severity.MEDIUM: "Warning",
    Severity.LOW: "Accent",
}
_ZWSP = "\u200b"
_MARKDOWN = re.compile(r"([\\`*_\[\]()#<>~])")
# A bullet, or an ordered marker (1-9 digits, then `.` or `)`, then a space or the line's end).
_LIST_MARKER = re.compile(r"^(\s*)([-+]|\d{1,9}[.)](?=\s|$))", re.MULTILINE)
_WWW = re.compile(r"(www)\.", re.IGNORECASE)
# C0 and C1 controls other than tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_RUN_ID_HEADER = "x-ms-workflow-run-id"
_LEGACY_ERROR = re.compile(r"HTTP error (\d{3})")
_BODY_READ_LIMIT = 4096
_EXCERPT_LIMIT = 200
# Path segments and query values at least this long are treated as the URL's secrets.
_SECRET_MIN = 16


def escape_markdown(text: str, *, links: bool = True) -> str:
    """`text` as it was typed, whatever Markdown it holds (see the module docstring).

    `links=False` keeps URLs intact, for commands that must survive a copy and paste.
    """
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _LIST_MARKER.sub(lambda m: f"{m[1]}{m[2][:-1]}\\{m[2][-1]}", text)
    text = text.replace("{{", "{" + _ZWSP + "{")
    if links:
        text = _WWW.sub(lambda m: f"{m[1]}{_ZWSP}.", text.replace("://", ":" + _ZWSP + "//"))
    return re.sub(r"\n\s*", "\n\n", text)


def adaptive_card(
    incident: Incident, analysis: Analysis | None, permalink: str | None
) -> dict[str, Any]:
    """The Workflows webhook body: severity and title, the facts, and the analysis."""
    fixed = [_header(f"{incident.severity} · {incident.title}", _COLORS[incident.severity])]
    fixed.append(
        _facts(
            [
                ("Id", incident.id),
                ("Status", incident.status.value),
                ("Source", incident.source),
                ("Resource", incident.resource or "-"),
                ("First seen", f"{incident.opened_at:%Y-%m-%d %H:%M:%S} UTC"),
                ("Last seen", f"{incident.last_seen_at:%Y-%m-%d %H:%M:%S} UTC"),
                ("Occurrences", str(incident.occurrences)),
            ]
        )
    )
    if analysis is None:
        fixed.append(_text("No analysis is available yet: follow the Slack thread.", subtle=True))
        return _message(fixed, permalink)
    sections, cut = _analysis_sections(analysis)
    card = _message(fixed, permalink)
    body: list[dict[str, Any]] = card["attachments"][0]["content"]["body"]
    used = len(encode(card)) + len(encode(_text(CUT_NOTE, subtle=True)))
    for section in sections:
        size = sum(len(encode(block)) + 1 for block in section)
        if used + size > CARD_BUDGET:
            cut = True
            break
        body += section
        used += size
    if cut:
        body.append(_text(CUT_NOTE, subtle=True))
    return card


def resolved_card(incident: Incident) -> dict[str, Any]:
    """Resolved: by whom (or by the alert clearing) and after how long, in a few lines,
    because the analysis card above it in the channel already says the rest."""
    ended = incident.resolved_at or incident.last_seen_at
    by = incident.resolved_by or "the alert clearing"
    body = [
        _header(f"RESOLVED · {incident.title}", "Good"),
        _text(f"Resolved by {by} after {short_duration(ended - incident.opened_at)}."),
        _facts(
            [
                ("Id", incident.id),
                ("Severity", incident.severity.value),
                ("Resolved", f"{ended:%Y-%m-%d %H:%M:%S} UTC"),
                ("Occurrences", str(incident.occurrences)),
            ]
        ),
    ]
    return _message(body, None)


def encode(card: dict[str, Any]) -> bytes:
    """The bytes posted for `card`, which are also what its size is measured on: compact
    JSON with non-ASCII characters escaped, the largest any re-encoding along the way (UTF-8
    or escaped) can make it, so a card that fits here fits wherever Teams measures it."""
    return json.dumps(card, separators=(",", ":")).encode()


class TeamsWebhook:
    """Posts cards to Workflows webhooks. The URL is given per call, because incidents are
    routed by severity to different channels; the session, when not given, is made on first
    use, so that constructing the client connects to nothing.

    A 202 from Workflows means the flow accepted the request, not that the card is in the
    channel: a flow that fails afterwards fails in its run history, out of the bot's sight.
    Retries (here and in the outbox) follow a timeout too, so a card whose answer was lost
    can, rarely, appear twice: a repeated card costs less than a missing one.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        retries: int = 1,
        backoff: float = 0.5,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = session
        self._owns_session = session is None

    async def post(self, url: str, card: dict[str, Any]) -> str | None:
        """Post one card; the workflow run id when Workflows gave one, else None.

        Workflows answers 202; the older Office 365 connectors answer 200 with the body "1",
        and report a failure as a 200 whose body names the HTTP error: that is a failure too.
        """
        where = origin(url)
        data = encode(card)
        if len(data) > MESSAGE_LIMIT:
            raise DeliveryError(
                f"the Teams card is {len(data):,} bytes, over Teams' {MESSAGE_LIMIT:,}-byte limit",
                retryable=False,
            )
        status, text, run_id = await self._post(url, data, where)
        if status == 202 or (status == 200 and text.strip() in ("", "1")):
            return run_id
        # Scrubbed before it is cut: a cut could split a secret and so hide it from the scrub.
        words = _excerpt(_error_text(_scrub(text, url)))
        if status == 200:
            legacy = _LEGACY_ERROR.search(text)
            code = int(legacy[1]) if legacy else 0
            raise DeliveryError(
                f"Teams did not post the card at {where}: {words}",
                retryable=code == 429 or code >= 500,
            )
        if status in (401, 403):
            raise DeliveryError(
                f"Teams refused the webhook's signature at {where} ({status}): {words}",
                retryable=False,
            )
        if status == 404:
            raise DeliveryError(
                f"Teams has no workflow at this webhook URL on {where} (404): "
                "was the workflow deleted or turned off?",
                retryable=False,
            )
        raise DeliveryError(
            f"Teams rejected the card at {where} ({status}): {words}", retryable=False
        )

    async def check(self, url: str) -> str:
        """Prove the webhook's host is reachable, without posting anything.

        It opens a TCP connection and, for https, completes a TLS handshake that verifies
        the certificate: DNS, routing, egress firewall and TLS are what fail in practice.
        It sends no HTTP request, not even a HEAD or GET: which methods start a flow is the
        flow owner's setting, not ours, so any request might start a run (a failed run in
        its history, or a blank card), and an answer to a GET would prove little more than
        the handshake does. So the workflow and its signature are not proven: only a real
        card would prove them, and the result says so.
        """
        parts = urlsplit(url)
        where = origin(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryError("the Teams webhook is not an http(s) URL", retryable=False)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(
                    parts.hostname,
                    port,
                    ssl=ssl.create_default_context() if secure else None,
                    server_hostname=parts.hostname if secure else None,
                )
        except TimeoutError as exc:
            raise DeliveryError(
                f"Teams webhook host {where} did not answer within {self.timeout:g} s",
                retryable=True,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"Teams webhook host {where} has an invalid TLS certificate", retryable=False
            ) from exc
        except socket.gaierror as exc:
            raise DeliveryError(f"cannot resolve the Teams host {where}", retryable=True) from exc
        except OSError as exc:
            raise DeliveryError(f"Teams is unreachable at {where}", retryable=True) from exc
        writer.close()
        # The connection has proven what it can; a server that drops it rudely changes nothing.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        handshake = "TLS handshake" if secure else "TCP connection"
        return f"Teams webhook host {where} reachable ({handshake} ok); no test card posted"

    async def close(self) -> None:
        """Close the session if this client made it; a session passed in is its owner's."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str, data: bytes, where: str) -> tuple[int, str, str | None]:
        """POST `data`; status, body and run id for any answer but 429 and 5xx. Those,
        timeouts and network errors get `retries` quick retries with jitter, then raise a
        retryable DeliveryError. Exceptions are never quoted: theirs may hold the URL."""
        attempt = 0
        while True:
            try:
                status, text, run_id = await self._post_once(url, data)
            except TimeoutError:
                failure = DeliveryError(
                    f"Teams did not answer within {self.timeout:g} s at {where}", retryable=True
                )
            except aiohttp.ClientError:
                failure = DeliveryError(f"Teams is unreachable at {where}", retryable=True)
            else:
                if status == 429:
                    failure = DeliveryError(
                        f"Teams is rate limiting the webhook at {where} (429)", retryable=True
                    )
                elif status >= 500:
                    failure = DeliveryError(
                        f"Teams is unavailable at {where} ({status})", retryable=True
                    )
                else:
                    return status, text, run_id
            if attempt >= self.retries:
                raise failure
            attempt += 1
            await asyncio.sleep(self.backoff * (1 + random.random()))

    async def _post_once(self, url: str, data: bytes) -> tuple[int, str, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        headers = {"Content-Type": "application/json"}
        async with self._session.post(url, data=data, headers=headers, timeout=timeout) as answer:
            text = (await answer.read())[:_BODY_READ_LIMIT].decode("utf-8", errors="replace")
            return answer.status, text, answer.headers.get(_RUN_ID_HEADER)


def _analysis_sections(analysis: Analysis) -> tuple[list[list[dict[str, Any]]], bool]:
    """The analysis as sections that are kept or left out whole, in reading order, and
    whether any field had to be cut to its limit."""
    cut = False

    def shorten(text: str, limit: int) -> str:
        nonlocal cut
        if len(text) <= limit:
            return text
        cut = True
        return text[: limit - 1].rstrip() + "…"

    sections = [
        [_text("Root cause", bold=True), _text(shorten(analysis.root_cause, SECTION_LIMIT))],
        [_text("Impact", bold=True), _text(shorten(analysis.impact, SECTION_LIMIT))],
    ]
    steps: list[list[dict[str, Any]]] = []
    for number, step in enumerate(analysis.remediation_steps, start=1):
        action = escape_markdown(shorten(step.action, STEP_LIMIT))
        blocks = [_block(f"**{number}.** {action}")]
        if step.command:
            command = escape_markdown(shorten(step.command, COMMAND_LIMIT), links=False)
            blocks.append(_block(command, fontType="Monospace"))
        steps.append(blocks)
    if steps:
        steps[0].insert(0, _text("Remediation", bold=True))
    confidence = f"Confidence {analysis.confidence:.0%} · {analysis.analyzer.value} analysis"
    return [*sections, *steps, [_text(confidence, subtle=True)]], cut


def _message(body: list[dict[str, Any]], permalink: str | None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if is_https(permalink):
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in Slack", "url": permalink}
        ]
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": content}],
    }


def _header(text: str, color: str) -> dict[str, Any]:
    return _block(
        escape_markdown(_flat(text, TITLE_LIMIT)), size="Large", weight="Bolder", color=color
    )


def _facts(facts: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "FactSet",
        "facts": [
            {"title": title, "value": escape_markdown(_flat(value, FACT_LIMIT))}
            for title, value in facts
        ],
    }


def _text(text: str, *, bold: bool = False, subtle: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if bold:
        options["weight"] = "Bolder"
    if subtle:
        options["isSubtle"] = True
    return _block(escape_markdown(text), **options)


def _block(markdown: str, **options: Any) -> dict[str, Any]:
    """A TextBlock of text that is already safe Markdown."""
    return {"type": "TextBlock", "text": markdown, "wrap": True, **options}


def _error_text(text: str) -> str:
    """The `code: message` of a Logic Apps error body, else the body itself."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    return text


def _scrub(text: str, url: str) -> str:
    """`text` without the URL's secrets: the URL itself, its signature, its other long query
    values and its long path segments (a legacy connector URL carries its token in the path)."""
    parts = urlsplit(url)
    secrets = [url, parts.query]
    raw = [tuple(pair.partition("=")[::2]) for pair in parts.query.split("&")]
    for name, value in [*raw, *parse_qsl(parts.query)]:  # as sent, and percent-decoded
        if name == "sig" or len(value) >= _SECRET_MIN:
            secrets.append(value)
    secrets += [segment for segment in parts.path.split("/") if len(segment) >= _SECRET_MIN]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    return text


def _excerpt(text: str) -> str:
    return _flat(text, _EXCERPT_LIMIT) or "no reason given"


def _flat(text: str, limit: int) -> str:
    """One line within `limit` characters, marked with "…" when it had to be cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
