"""Email an incident: one message with a plain-text and an HTML part carrying the same
content (the sender's note, the facts, the analysis, the timeline, the Slack link), sent
through SMTP (STARTTLS, then login) or SES (`SendRawEmail`, so both transports send the very
same MIME message).

Alert and model text is escaped in the HTML: the only link in it is the Slack permalink, and
only an https one. Sending blocks (smtplib, boto3): callers run it in a thread. Every failure
is a `DeliveryError` whose reason a person can act on, and which says whether a retry helps.
"""

from __future__ import annotations

import html
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analysis.models import Analysis
from incidents.models import Incident, TimelineEvent
from notify.outbox import DeliveryError

SUBJECT_LIMIT = 200
TIMELINE_LIMIT = 50
_SES_PERMANENT = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "ConfigurationSetDoesNotExistException",
    "AccessDenied",
    "AccessDeniedException",
    "AccountSendingPausedException",
    "InvalidParameterValue",
}


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def compose(
    incident: Incident,
    analysis: Analysis | None,
    timeline: Sequence[TimelineEvent],
    permalink: str | None,
    note: str | None,
    sent_by: str,
) -> EmailContent:
    """Both parts from one list of sections, so that they can never say different things."""
    sections: list[tuple[str, list[str]]] = []
    if note:
        sections.append((f"Note from {sent_by}", [note]))
    facts = [
        f"Status: {incident.status.value}",
        f"Severity: {incident.severity}",
        f"Source: {incident.source}",
        f"Resource: {incident.resource or '-'}",
        f"First seen: {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC",
        f"Last seen: {incident.last_seen_at:%Y-%m-%d %H:%M:%S} UTC",
        f"Occurrences: {incident.occurrences}",
    ]
    sections.append(("Incident", facts))
    steps: list[tuple[str, str | None]] = []
    if analysis is None:
        sections.append(("Analysis", ["No analysis is available for this incident yet."]))
    else:
        sections.append(("Root cause", [analysis.root_cause]))
        if analysis.severity_justification:
            sections.append(("Severity", [analysis.severity_justification]))
        sections.append(("Impact", [analysis.impact]))
        steps = [(step.action, step.command) for step in analysis.remediation_steps]
    events = [
        f"{e.at:%Y-%m-%d %H:%M:%S} UTC {e.kind.value} by {e.actor}"
        + (f": {e.detail}" if e.detail else "")
        for e in timeline[-TIMELINE_LIMIT:]
    ]
    link = permalink if permalink and permalink.startswith("https://") else None
    subject = _flat(f"[{incident.severity}] {incident.id}: {incident.title}")
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1] + "…"
    return EmailContent(
        subject=subject,
        text=_text_part(incident, sections, steps, events, link),
        html=_html_part(incident, sections, steps, events, link),
    )


def _text_part(
    incident: Incident,
    sections: list[tuple[str, list[str]]],
    steps: list[tuple[str, str | None]],
    events: list[str],
    link: str | None,
) -> str:
    lines = [f"{incident.id}: {incident.title}", ""]
    for title, paragraphs in sections:
        lines += [title.upper(), *paragraphs, ""]
    if steps:
        lines.append("REMEDIATION")
        for number, (action, command) in enumerate(steps, start=1):
            lines.append(f"{number}. {action}")
            if command:
                lines.append(f"   $ {command}")
        lines.append("")
    if events:
        lines += ["TIMELINE", *events, ""]
    if link:
        lines.append(f"Slack thread: {link}")
    return "\n".join(lines).rstrip() + "\n"


def _html_part(
    incident: Incident,
    sections: list[tuple[str, list[str]]],
    steps: list[tuple[str, str | None]],
    events: list[str],
    link: str | None,
) -> str:
    e = html.escape
    out = [
        '<html><body style="font-family:sans-serif;font-size:14px;color:#1d1c1d">',
        f"<h2>{e(incident.id)}: {e(incident.title)}</h2>",
    ]
    for title, paragraphs in sections:
        out.append(f"<h3>{e(title)}</h3>")
        out += [f'<p style="white-space:pre-wrap">{e(p)}</p>' for p in paragraphs]
    if steps:
        out.append("<h3>Remediation</h3><ol>")
        for action, command in steps:
            shown = f"<pre><code>{e(command)}</code></pre>" if command else ""
            out.append(f"<li>{e(action)}{shown}</li>")
        out.append("</ol>")
    if events:
        out.append("<h3>Timeline</h3><ul>")
        out += [f"<li>{e(event)}</li>" for event in events]
        out.append("</ul>")
    if link:
        out.append(f'<p><a href="{e(link, quote=True)}">Open the Slack thread</a></p>')
    out.append("</body></html>")
    return "\n".join(out)


def build_message(
    content: EmailContent, sender: str, recipients: Sequence[str], domain: str | None = None
) -> EmailMessage:
    """multipart/alternative, plain text first, so that a client that shows one shows HTML."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = content.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=domain or sender.rpartition("@")[2] or None)
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


class SmtpTransport:
    """SMTP submission: STARTTLS before anything else, and login only over TLS."""

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
        if user and not starttls:
            raise ValueError("SMTP login without STARTTLS would send the password in clear")
        self.host = host
        self.port = port
        self.user = user
        self.starttls = starttls
        self.timeout = timeout
        self._password = password or ""
        self._ssl_context = ssl_context

    def send(self, message: EmailMessage) -> str:
        """Send; the Message-ID. Blocking."""
        with self._session() as smtp:
            recipients = [a.strip() for a in str(message["To"]).split(",") if a.strip()]
            try:
                # SMTP wants CRLF line ends; smtplib sends bytes as they are.
                wire = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
                refused = smtp.sendmail(str(message["From"]), recipients, wire)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                temporary = all(400 <= code < 500 for code in codes)
                answers = "; ".join(
                    f"{address} ({code} {_flat(text.decode(errors='replace'))})"
                    for address, (code, text) in exc.recipients.items()
                )
                raise DeliveryError(
                    f"the mail server refused {answers}", retryable=temporary
                ) from exc
            except smtplib.SMTPSenderRefused as exc:
                raise DeliveryError(
                    f"the mail server refused the sender {exc.sender} ({exc.smtp_code})",
                    retryable=exc.smtp_code < 500,
                ) from exc
            except smtplib.SMTPResponseException as exc:
                raise _reply_error(exc) from exc
            if refused:
                raise DeliveryError(
                    f"the mail server refused {', '.join(refused)} (the others were sent)",
                    retryable=False,
                )
        return str(message["Message-ID"])

    def check(self) -> str:
        """Connect, STARTTLS, login and NOOP: everything but a message."""
        with self._session() as smtp:
            smtp.noop()
        tls = "STARTTLS" if self.starttls else "no TLS"
        login = f", logged in as {self.user}" if self.user else ""
        return f"SMTP {self.host}:{self.port} ({tls}{login})"

    def _session(self) -> smtplib.SMTP:
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"the mail server {self.host}:{self.port} is unreachable ({_why(exc)})",
                retryable=True,
            ) from exc
        try:
            smtp.ehlo()
            if self.starttls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"the mail server {self.host}:{self.port} does not offer STARTTLS",
                        retryable=False,
                    )
                smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self._password)
        except DeliveryError:
            smtp.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise DeliveryError(
                f"the mail server refused the login for {self.user} ({exc.smtp_code})",
                retryable=False,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            smtp.close()
            raise DeliveryError(
                f"the certificate of {self.host} is not trusted ({exc.verify_message})",
                retryable=False,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            smtp.close()
            raise _reply_error(exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise DeliveryError(
                f"the mail server {self.host}:{self.port} dropped the connection ({_why(exc)})",
                retryable=True,
            ) from exc
        return smtp


class SesTransport:
    """SES `SendRawEmail` (IAM `ses:SendRawEmail`); `check` reads the quota
    (`ses:GetSendQuota`)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, message: EmailMessage) -> str:
        recipients = [a.strip() for a in str(message["To"]).split(",") if a.strip()]
        try:
            answer = self.client.send_raw_email(
                Source=str(message["From"]),
                Destinations=recipients,
                RawMessage={"Data": message.as_bytes()},
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            words = str(exc.response.get("Error", {}).get("Message", "")) or code
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            raise DeliveryError(
                f"SES refused the email: {words}",
                retryable=code not in _SES_PERMANENT and (status >= 500 or status == 429
                                                         or "Throttl" in code),
            ) from exc  # fmt: skip
        except BotoCoreError as exc:
            raise DeliveryError(f"SES is unreachable ({exc})", retryable=True) from exc
        return str(answer["MessageId"])

    def check(self) -> str:
        try:
            quota = self.client.get_send_quota()
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryError(f"SES does not answer: {exc}", retryable=True) from exc
        return (
            f"SES, {quota.get('SentLast24Hours', 0):.0f} of "
            f"{quota.get('Max24HourSend', 0):.0f} sent in the last 24 h"
        )


def _reply_error(exc: smtplib.SMTPResponseException) -> DeliveryError:
    """4xx is the server asking to come back later; 5xx is a refusal."""
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
    return DeliveryError(
        f"the mail server answered {exc.smtp_code} {_flat(text)}", retryable=exc.smtp_code < 500
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return _flat(str(exc)) or type(exc).__name__


def _flat(text: str) -> str:
    return " ".join(text.split())
