"""Sending an email: SMTP submission (STARTTLS, then login) or SES (`SendRawEmail`), the very
same MIME message either way (`notify.email.build_message` builds it).

Sending blocks (smtplib, boto3): callers run it in a thread. Every failure becomes a
`DeliveryError` whose reason is one line a person can act on and which says whether trying
again can help: a 4xx reply, a refused connection or a timeout can; a refused login, an
unknown recipient or an untrusted certificate cannot.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import TYPE_CHECKING, Any

from notify.outbox import DeliveryError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


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
            return DeliveryError(f"{server}: {_one_line(str(exc))}", retryable=False)
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
    return _one_line(text.decode(errors="replace") if isinstance(text, bytes) else text)


def _describe(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return _one_line(str(strerror or exc)) or type(exc).__name__


def _ses_failure(exc: ClientError, doing: str, permission: str) -> DeliveryError:
    """SES's refusal by its error code: throttling and 5xx pass, a 4xx needs a person."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = _one_line(str(error.get("Message") or "")) or code
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


def _one_line(text: str) -> str:
    """A server's reply or an error on one line: the reason a `DeliveryError` carries."""
    return " ".join(text.split())
