"""Email an incident: one message whose plain-text and HTML parts say the same thing (the
sender's note, the incident's facts, the analysis, the timeline, the Slack link), sent through
SMTP submission (STARTTLS, then login) or SES (`SendRawEmail`), so that both transports send
the very same MIME message.

Alert, model and user text reaches the HTML only through `html.escape`: an alert titled
`<a href=...>` reads as exactly that, and the only link is the Slack permalink, and only an
https one. Sending blocks (smtplib, boto3): callers run it in a thread. Every failure becomes a
`DeliveryError` whose reason is one line a person can act on and which says whether trying
again can help: a 4xx reply, a refused connection or a timeout can; a refused login, an
unknown recipient or an untrusted certificate cannot.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from analysis.models import Analysis
from incidents.models import Incident, TimelineEvent
from notify.outbox import DeliveryError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

SUBJECT_LIMIT = 200
TIMELINE_LIMIT = 50
# C0 and C1 controls other than tab and newline: invisible in a mail client at best.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The mechanisms smtplib's `login` can speak.
_LOGIN_MECHANISMS = {"CRAM-MD5", "PLAIN", "LOGIN"}
_SES_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
_AWS_DENIED = {"AccessDenied", "AccessDeniedException"}
_AWS_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
}
_SES_REFUSALS = {
    "MessageRejected": "SES refused the email",
    "MailFromDomainNotVerifiedException": "SES has not verified the sender's MAIL FROM domain",
    "ConfigurationSetDoesNotExist": "SES has no such configuration set",
    "ConfigurationSetSendingPausedException": "SES has paused the configuration set",
    "AccountSendingPausedException": "SES has paused sending for this AWS account",
}

_STYLE_BODY = (
    "margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;font-size:14px;"
    "line-height:1.45;color:#1d1c1d;background:#ffffff"
)
_STYLE_H2 = "margin:0 0 12px;font-size:18px"
_STYLE_H3 = "margin:20px 0 6px;font-size:15px;border-bottom:1px solid #dddddd"
_STYLE_P = "margin:0 0 8px"
_STYLE_CELL = "padding:2px 14px 2px 0;text-align:left;vertical-align:top"
_STYLE_PRE = (
    "margin:6px 0 10px;padding:8px;background:#f4f4f4;border-radius:4px;"
    "font-family:Menlo,Consolas,monospace;font-size:13px;white-space:pre-wrap;"
    "word-break:break-all"
)


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _Document:
    """What the email says, as clean text, before either part renders it."""

    heading: str
    note: tuple[str, str] | None
    facts: list[tuple[str, str]]
    findings: list[tuple[str, str]]
    steps: list[tuple[str, str | None]]
    events: list[tuple[str, str, str, str]]
    hidden_events: int
    link: str | None


def compose(
    incident: Incident,
    analysis: Analysis | None,
    timeline: Sequence[TimelineEvent],
    permalink: str | None,
    note: str | None,
    sent_by: str,
) -> EmailContent:
    """The subject and both parts, rendered from one `_Document` so that the two parts can
    never say different things. `sent_by` is how the note's author is shown (a Slack name)."""
    document = _document(incident, analysis, timeline, permalink, note, sent_by)
    subject = _cut(document.heading, SUBJECT_LIMIT)
    return EmailContent(
        subject=subject, text=_render_text(document), html=_render_html(document, subject)
    )


def build_message(
    content: EmailContent,
    sender: str,
    recipients: Sequence[str],
    message_id_domain: str | None = None,
) -> EmailMessage:
    """multipart/alternative with the plain text first: a client shows the last part it can
    render, so HTML wins where it can and the text is the fallback.

    Both parts are quoted-printable: SMTP servers without 8BITMIME, and SES, want 7-bit
    bodies, and quoted-printable keeps every line under SMTP's 998-character limit. The
    Message-ID's domain is the sender's unless given: `make_msgid` would otherwise look up
    this host's FQDN, which can stall on a container's DNS."""
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    domain = message_id_domain or parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = content.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(content.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(content.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


class SmtpTransport:
    """SMTP submission: STARTTLS first, then the login, so that the password only ever
    crosses a connection encrypted under a certificate that was verified.

    Implicit TLS (SMTPS, port 465) is not spoken: submission on 587 with STARTTLS is what
    providers offer alongside it. Each send is one connection, opened and closed: email is
    rare here, and a kept connection would be dropped by the server between incidents."""

    def __init__(
        self,
        host: str,
        port: int = 587,
        user: str | None = None,
        password: str | None = None,
        *,
        starttls: bool = True,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if user is not None and not starttls:
            raise ValueError(
                f"SMTP login as {user} needs STARTTLS: without it the password would cross "
                "the network in clear"
            )
        self.host = host
        self.port = port
        self.user = user
        self.starttls = starttls
        self.timeout = timeout
        self._password = password or ""
        # Built once: it reads the CA bundle (SSL_CERT_FILE when set), and is thread-safe.
        self._ssl_context = ssl_context or ssl.create_default_context()

    @property
    def server(self) -> str:
        return f"SMTP {self.host}:{self.port}"

    def send(self, message: EmailMessage) -> str:
        """Send `message` (from `build_message`) to its To, Cc and Bcc addresses; its
        Message-ID, which is what the outbox records. Blocking.

        A partial refusal is final: the accepted recipients have the email, and a retry
        would send it to them again."""
        if not _recipients(message):
            raise DeliveryError("the email has no recipient", retryable=False)
        with self._session() as smtp:
            refused = smtp.send_message(message)
        if refused:
            raise DeliveryError(
                f"{self.server} refused {_refusals(refused)}; the other recipients got the email",
                retryable=False,
            )
        return str(message.get("Message-ID", ""))

    def check(self) -> str:
        """Everything a send does but the message (connect, STARTTLS, login, NOOP), so that a
        health check proves the host, the certificate and the credentials. Blocking."""
        with self._session() as smtp:
            code, reply = smtp.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
        tls = "STARTTLS" if self.starttls else "no TLS"
        login = f"logged in as {self.user}" if self.user else "no login"
        return f"{self.server} ({tls}, {login})"

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        """A connection that is secured and logged in, closed however the block ends; any
        failure on the way, or in the block, is a `DeliveryError`."""
        try:
            # Connecting in the constructor is what gives STARTTLS the host name to verify.
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._failure(exc, connected=False) from exc
        try:
            try:
                self._secure_and_log_in(smtp)
                yield smtp
            finally:
                _quit(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            raise self._failure(exc, connected=True) from exc

    def _secure_and_log_in(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo_or_helo_if_needed()
        if self.starttls:
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{self.server} does not offer STARTTLS, so the email would cross the "
                    "network in clear",
                    retryable=False,
                )
            smtp.starttls(context=self._ssl_context)
            smtp.ehlo_or_helo_if_needed()
        if self.user is None:
            return
        offered = set(smtp.esmtp_features.get("auth", "").upper().split())
        if not offered & _LOGIN_MECHANISMS:
            raise DeliveryError(
                f"{self.server} offers no login method smtplib can use "
                f"(it offers: {', '.join(sorted(offered)) or 'none'})",
                retryable=False,
            )
        smtp.login(self.user, self._password)

    def _failure(self, exc: OSError, *, connected: bool) -> DeliveryError:
        """What went wrong, for the person reading the incident's thread: a 4xx reply, a
        dropped connection or a timeout may pass; a 5xx refusal or a bad certificate will
        not until someone changes something."""
        server = self.server
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, TimeoutError
        ):
            # smtplib reports a reply that never came as a disconnection.
            exc = exc.__context__
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            if exc.smtp_code >= 500:
                return DeliveryError(
                    f"{server} refused the login for {self.user} ({_reply(exc)})",
                    retryable=False,
                )
            return DeliveryError(
                f"{server} could not check the login for {self.user} now ({_reply(exc)})",
                retryable=True,
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            temporary = bool(codes) and all(400 <= code < 500 for code in codes)
            return DeliveryError(
                f"{server} refused {_refusals(exc.recipients)}", retryable=temporary
            )
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return DeliveryError(
                f"{server} refused the sender {exc.sender} ({_reply(exc)})",
                retryable=exc.smtp_code < 500,
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return DeliveryError(f"{server} answered {_reply(exc)}", retryable=exc.smtp_code < 500)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryError(f"{server}: {_flat(str(exc))}", retryable=False)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryError(
                f"{server} closed the connection ({_describe(exc)})", retryable=True
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(
                f"the certificate of {server} is not trusted ({exc.verify_message}); "
                "install its CA (SSL_CERT_FILE) or fix the host name",
                retryable=False,
            )
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return DeliveryError(
                f"{server} closed the connection during the TLS handshake", retryable=True
            )
        if isinstance(exc, ssl.SSLError):
            return DeliveryError(
                f"the TLS handshake with {server} failed ({exc.reason or _describe(exc)})",
                retryable=False,
            )
        if isinstance(exc, TimeoutError):
            return DeliveryError(
                f"{server} did not answer within {self.timeout:g} s", retryable=True
            )
        if not connected:
            return DeliveryError(f"{server} is unreachable ({_describe(exc)})", retryable=True)
        return DeliveryError(f"{server} dropped the connection ({_describe(exc)})", retryable=True)


class SesTransport:
    """SES (API v1) `SendRawEmail`, with the MIME message built for SMTP, so that the two
    transports send the same bytes. The caller builds the boto3 `ses` client: region,
    credentials, timeouts and retries are its configuration.

    IAM: sending needs `ses:SendRawEmail` on the sender's identity; `check` calls
    `GetSendQuota`, which needs `ses:GetSendQuota` and sends nothing."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, message: EmailMessage) -> str:
        """Send `message`; SES's MessageId (SES sets the Message-ID header itself). Blocking."""
        recipients = _recipients(message)
        if not recipients:
            raise DeliveryError("the email has no recipient", retryable=False)
        with self._errors("send the email", "ses:SendRawEmail"):
            answer = self.client.send_raw_email(
                # The bare address: a display name outside ASCII would need RFC 2047 here.
                Source=parseaddr(str(message["From"]))[1],
                Destinations=recipients,
                RawMessage={"Data": _wire(message)},
            )
        return str(answer["MessageId"])

    def check(self) -> str:
        """The region and the 24-hour quota: proves the credentials and the permission
        without sending anything. Blocking."""
        with self._errors("read the sending quota", "ses:GetSendQuota"):
            quota = self.client.get_send_quota()
        region = self.client.meta.region_name
        sent = float(quota.get("SentLast24Hours", 0))
        limit = float(quota.get("Max24HourSend", 0))
        rate = float(quota.get("MaxSendRate", 0))
        # SES reports an unlimited daily quota as -1.
        of = "" if limit < 0 else f" of {limit:.0f}"
        return f"SES {region}: {sent:.0f}{of} sent in the last 24 h, at most {rate:g}/s"

    @contextmanager
    def _errors(self, doing: str, permission: str) -> Iterator[None]:
        # botocore only with an SES client in hand: SMTP alone must not load it (issue 13).
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            NoRegionError,
            ParamValidationError,
            PartialCredentialsError,
        )
        from botocore.parsers import ResponseParserError

        try:
            yield
        except ClientError as exc:
            raise _ses_failure(exc, doing, permission) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise DeliveryError(
                f"SES: no usable AWS credentials were found ({exc})", retryable=False
            ) from exc
        except NoRegionError as exc:
            raise DeliveryError("SES: no AWS region is configured", retryable=False) from exc
        except ParamValidationError as exc:
            raise DeliveryError(f"SES: the request is invalid ({exc})", retryable=False) from exc
        except BotoCoreError as exc:
            raise DeliveryError(f"SES is unreachable ({exc})", retryable=True) from exc
        except ResponseParserError as exc:
            # Not a BotoCoreError: what a proxy or a load balancer says instead of SES.
            raise DeliveryError(
                "SES's endpoint answered something that is not an SES response", retryable=True
            ) from exc


def _document(
    incident: Incident,
    analysis: Analysis | None,
    timeline: Sequence[TimelineEvent],
    permalink: str | None,
    note: str | None,
    sent_by: str,
) -> _Document:
    said = _clean(note or "").strip()
    findings: list[tuple[str, str]]
    steps: list[tuple[str, str | None]] = []
    if analysis is None:
        findings = [("Analysis", "No analysis is available for this incident yet.")]
    else:
        findings = [("Root cause", _clean(analysis.root_cause).strip())]
        if analysis.severity_justification.strip():
            justification = _clean(analysis.severity_justification).strip()
            findings.append((f"Why {analysis.severity}", justification))
        findings.append(("Impact", _clean(analysis.impact).strip()))
        steps = [
            (_clean(step.action).strip(), _clean(step.command or "").strip() or None)
            for step in analysis.remediation_steps
        ]
    shown = timeline[-TIMELINE_LIMIT:]
    return _Document(
        heading=_flat(_clean(f"[{incident.severity}] {incident.id}: {incident.title}")),
        note=(_flat(_clean(sent_by)) or "someone", said) if said else None,
        facts=[
            ("Id", _flat(_clean(incident.id))),
            ("Status", incident.status.value),
            ("Severity", incident.severity.value),
            ("Source", _flat(_clean(incident.source))),
            ("Resource", _flat(_clean(incident.resource or "")) or "-"),
            ("First seen", _when(incident.opened_at)),
            ("Last seen", _when(incident.last_seen_at)),
            ("Occurrences", str(incident.occurrences)),
        ],
        findings=findings,
        steps=steps,
        events=[
            (_when(e.at), e.kind.value, _flat(_clean(e.actor)), _flat(_clean(e.detail)))
            for e in shown
        ],
        hidden_events=len(timeline) - len(shown),
        link=_https(permalink),
    )


def _render_text(document: _Document) -> str:
    lines = [document.heading, ""]

    def heading(title: str) -> None:
        lines.extend([title, "-" * len(title)])

    if document.note:
        who, said = document.note
        heading(f"Note from {who}")
        lines.extend([said, ""])
    heading("Incident")
    width = max(len(label) for label, _ in document.facts) + 2
    lines.extend(f"{label + ':':<{width}}{value}" for label, value in document.facts)
    lines.append("")
    for title, paragraph in document.findings:
        heading(title)
        lines.extend([paragraph, ""])
    if document.steps:
        heading("Remediation")
        for number, (action, command) in enumerate(document.steps, start=1):
            lines.append(f"{number}. {_indent(action, '   ')}")
            if command:
                lines.append(f"   $ {_indent(command, '     ')}")
        lines.append("")
    if document.events:
        heading("Timeline")
        if document.hidden_events:
            lines.append(f"({document.hidden_events} earlier events not shown)")
        for at, kind, actor, detail in document.events:
            lines.append(f"{at}  {kind} by {actor}" + (f": {detail}" if detail else ""))
        lines.append("")
    if document.link:
        lines.append(f"Slack thread: {document.link}")
    return "\n".join(lines).rstrip() + "\n"


def _render_html(document: _Document, subject: str) -> str:
    out = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">',
        f"<title>{_h(subject)}</title></head>",
        f'<body style="{_STYLE_BODY}">',
        f'<h2 style="{_STYLE_H2}">{_h(document.heading)}</h2>',
    ]

    def heading(title: str) -> None:
        out.append(f'<h3 style="{_STYLE_H3}">{_h(title)}</h3>')

    if document.note:
        who, said = document.note
        heading(f"Note from {who}")
        out.append(f'<p style="{_STYLE_P}">{_h(said)}</p>')
    heading("Incident")
    out.append('<table style="border-collapse:collapse">')
    out.extend(
        f'<tr><th style="{_STYLE_CELL}">{_h(label)}</th>'
        f'<td style="{_STYLE_CELL}">{_h(value)}</td></tr>'
        for label, value in document.facts
    )
    out.append("</table>")
    for title, paragraph in document.findings:
        heading(title)
        out.append(f'<p style="{_STYLE_P}">{_h(paragraph)}</p>')
    if document.steps:
        heading("Remediation")
        out.append('<ol style="margin:0;padding-left:22px">')
        for action, command in document.steps:
            code = f'<pre style="{_STYLE_PRE}"><code>{_h(command, br=False)}</code></pre>'
            out.append(f"<li>{_h(action)}{code if command else ''}</li>")
        out.append("</ol>")
    if document.events:
        heading("Timeline")
        if document.hidden_events:
            out.append(
                f'<p style="{_STYLE_P}">({document.hidden_events} earlier events not shown)</p>'
            )
        out.append('<table style="border-collapse:collapse">')
        out.extend(
            f'<tr><td style="{_STYLE_CELL};white-space:nowrap">{_h(at)}</td>'
            f'<td style="{_STYLE_CELL}">{_h(kind)}</td>'
            f'<td style="{_STYLE_CELL}">{_h(actor)}</td>'
            f'<td style="{_STYLE_CELL}">{_h(detail)}</td></tr>'
            for at, kind, actor, detail in document.events
        )
        out.append("</table>")
    if document.link:
        out.append(
            f'<p style="margin:20px 0 0"><a href="{_h(document.link, br=False)}">'
            "Open the incident thread in Slack</a></p>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _h(text: str | None, *, br: bool = True) -> str:
    """Escaped for HTML text and attribute values alike (quotes too); line breaks kept as
    `<br>` outside `<pre>`, where a client that ignores CSS would run lines together."""
    escaped = html.escape(text or "", quote=True)
    return escaped.replace("\n", "<br>\n") if br else escaped


def _https(url: str | None) -> str | None:
    """`url` when it is an https URL with a host and nothing that could break out of an
    attribute or a line; None for anything else (http, javascript:, a bare word)."""
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme == "https" and parts.netloc else None


def _when(moment: datetime) -> str:
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC"


def _clean(text: str) -> str:
    """Line ends as `\\n` and no control characters, so both parts show the same text."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _indent(text: str, prefix: str) -> str:
    """Continuation lines of a multi-line step under its first line."""
    return text.replace("\n", "\n" + prefix)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _recipients(message: EmailMessage) -> list[str]:
    headers = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    return [address for _, address in getaddresses(headers) if address]


def _wire(message: EmailMessage) -> bytes:
    """The message with CRLF line ends, as RFC 5322 has them on the wire."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _quit(smtp: smtplib.SMTP) -> None:
    """Say QUIT, then close, whatever state the connection is in: a failed QUIT after a sent
    message must not turn the send into a failure."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_decoded(exc.smtp_error)}".strip()


def _refusals(refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    return "; ".join(
        f"{address} ({code} {_decoded(text)})" for address, (code, text) in refused.items()
    )


def _decoded(text: bytes | str) -> str:
    return _flat(text.decode(errors="replace") if isinstance(text, bytes) else text)


def _describe(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return _flat(str(strerror or exc)) or type(exc).__name__


def _ses_failure(exc: ClientError, doing: str, permission: str) -> DeliveryError:
    """SES's refusal by its error code: throttling and 5xx pass, a 4xx needs a person."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = _flat(str(error.get("Message") or "")) or code
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _SES_THROTTLED or status == 429:
        return DeliveryError(f"SES is throttling requests ({message})", retryable=True)
    if status >= 500:
        # botocore makes the status the code of an error page that is not SES's XML.
        detail = f"{status} {code}" if code and code != str(status) else str(status)
        return DeliveryError(f"SES is unavailable ({detail})", retryable=True)
    if code in _AWS_DENIED:
        return DeliveryError(
            f"AWS denied {permission} to these credentials: {message}", retryable=False
        )
    if code in _AWS_CREDENTIALS:
        return DeliveryError(f"AWS refused the credentials ({code}): {message}", retryable=False)
    if code in _SES_REFUSALS:
        return DeliveryError(f"{_SES_REFUSALS[code]}: {message}", retryable=False)
    return DeliveryError(f"SES refused to {doing} ({code or status}): {message}", retryable=False)
