"""AWS clients for gathering context: created on first use, bounded in time, and their errors
told in one line.

The analysis must never wait on AWS for long nor fail because of it, so every client has short
connect and read timeouts and standard retries, and every error becomes a short note on the
context rather than an exception.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from incidents.models import Alert
from ingest.parsers.base import as_dict

ClientFactory = Callable[[str, str | None], Any]
"""`(service, region) -> boto3 client`; region None: the factory's default region."""


_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class BotoClients:
    """A `ClientFactory` over one boto3 Session, creating each client on first use (never at
    import, and only for alerts that need AWS) and reusing it, since creating one costs tens of
    milliseconds. A client asked for no region gets `region`: the bot passes `AWS_REGION` (or
    `AWS_DEFAULT_REGION`) here, since botocore does not read `AWS_REGION`; None leaves botocore
    to its own default. Endpoint and credentials come from the environment as boto3 reads them
    (`AWS_ENDPOINT_URL` included); a Session is not thread-safe, so creation is serialized."""

    def __init__(
        self,
        session: Any | None = None,
        *,
        region: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 3.0,
        max_attempts: int = 3,
    ) -> None:
        self._session = session
        self._region = region
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_attempts = max_attempts
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str, region: str | None) -> Any:
        region = region or self._region
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                # Imported here: boto3 is needed only once an AWS alert asks for context.
                import boto3
                from botocore.config import Config

                if self._session is None:
                    self._session = boto3.Session()
                client = self._session.client(
                    service,
                    region_name=region,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": self._max_attempts},
                        connect_timeout=self._connect_timeout,
                        read_timeout=self._read_timeout,
                    ),
                )
                self._clients[(service, region)] = client
            return client


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong: the AWS error code and message of a ClientError
    (`AccessDenied: User ... is not authorized`), else the exception's type and text."""
    response = getattr(exc, "response", None)
    error = as_dict(as_dict(response).get("Error"))
    if error.get("Code"):
        code, message = str(error["Code"]), str(error.get("Message") or "")
        title = _HTML_TITLE.search(message)
        if title or message.lstrip().startswith("<"):
            message = title.group(1) if title else "(HTML error page)"
        text = message if message.startswith(code) else f"{code}: {message}".rstrip(": ")
    else:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return " ".join(text.split())


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


LOGS_PARSER = "cloudwatch_logs"


def own_log_group(alert: Alert) -> str | None:
    """The log group a CloudWatch Logs alert came from (its `log_group` label, else its
    resource), which context gathering reads and the investigation's tools may read without
    it being listed; None for any other alert, or one that names none."""
    if alert.parser != LOGS_PARSER:
        return None
    return alert.labels.get("log_group") or alert.resource or None


def alert_region(alert: Alert) -> str | None:
    """The alert's own region when it names a real one (the classic notification may carry
    `US East (N. Virginia)`); None leaves the client factory to the bot's configured region."""
    region = alert.labels.get("region", "")
    return region if _REGION.match(region) else None
