"""Open a Jira issue for an incident, so the follow-up work is tracked where the team plans it.

The `jira` library is synchronous: `JiraTickets.create` blocks, and callers run it in a thread.
Every failure becomes a `TicketError` whose `reason` is one line a person can act on in Slack,
because a raw `JiraError HTTP 400 url: ...` dump tells the on-call engineer nothing.

The request is shaped so that creating an issue costs exactly one call, `POST
/rest/api/2/issue`: the project and issue type go by key and name (the library would otherwise
look up their ids first), no server info is fetched at construction, and the created issue is
not reloaded (its key is all we need).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.models import Analysis
from incidents.models import Incident, Severity, TimelineEvent

if TYPE_CHECKING:
    # At run time `jira` (and `requests`) are imported with the first client, so that a bot
    # without Jira does not load them (issue 13's memory budget).
    from jira import JIRA
    from jira.exceptions import JIRAError

DEFAULT_PRIORITIES: Mapping[Severity, str] = {
    Severity.CRITICAL: "Highest",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
}
# Jira rejects a longer summary, or one with a line break, with a 400.
SUMMARY_LIMIT = 255
# Jira's text fields hold at most 32,767 characters; keep a margin for the truncation note.
DESCRIPTION_LIMIT = 32_000
TIMELINE_LIMIT = 50
# A reason is posted as one Slack line: long server messages are cut, not wrapped.
_REASON_LIMIT = 300
_REQUIRED = re.compile(r"^(?P<field>.+?) is required\.?$")


@dataclass(frozen=True)
class Ticket:
    key: str
    url: str


class TicketError(Exception):
    """Jira did not do what was asked; `reason` says why in one line fit for a Slack message,
    and `retryable` whether asking again later can help (an outage can; a 401 cannot)."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        self.reason = _cut(_flatten(reason), _REASON_LIMIT)
        self.retryable = retryable
        super().__init__(self.reason)


class JiraTickets:
    """Creates Jira issues in one project with Basic auth (account email and API token)."""

    def __init__(
        self,
        url: str,
        email: str,
        api_token: str,
        project: str,
        issue_type: str = "Task",
        priorities: Mapping[Severity, str] | None = None,
        labels: Sequence[str] = ("incident",),
        components: Sequence[str] = (),
        timeout: float = 10,
    ) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.issue_type = issue_type
        self.priorities = dict(DEFAULT_PRIORITIES if priorities is None else priorities)
        self.labels = list(labels)
        self.components = list(components)
        self.timeout = timeout
        self._credentials = (email, api_token)
        self._client: JIRA | None = None
        # Callers run `create` in worker threads; two first calls must not build two clients.
        self._lock = threading.Lock()

    def create(
        self,
        incident: Incident,
        analysis: Analysis | None,
        permalink: str | None,
        timeline: Sequence[TimelineEvent] = (),
    ) -> Ticket:
        """Create the issue and return its key and browser URL. Blocking: run it in a thread."""
        fields = self.fields(incident, analysis, permalink, timeline)
        with self._translated_errors():
            issue = self._jira().create_issue(fields=fields, prefetch=False)
        key = str(issue.key)
        return Ticket(key=key, url=f"{self.url}/browse/{key}")

    def comment(self, key: str, body: str) -> None:
        """Add a comment to issue `key` (one `POST .../comment`). Blocking: run it in a thread."""
        with self._translated_errors():
            self._jira().add_comment(key, body)

    def transition(self, key: str, name: str) -> str:
        """Move issue `key` through the transition called `name` (case-insensitive), as the
        workflow offers it now; the name of the status it went to. Blocking."""
        with self._translated_errors():
            offered = self._jira().transitions(key)
            match = next((t for t in offered if str(t["name"]).lower() == name.lower()), None)
            if match is None:
                names = ", ".join(f"'{t['name']}'" for t in offered) or "none"
                raise TicketError(
                    f"Jira issue {key} offers no transition '{name}' now (offered: {names})"
                )
            self._jira().transition_issue(key, str(match["id"]))
        return str((match.get("to") or {}).get("name") or name)

    def check(self) -> str:
        """Jira's version, proving the URL and the credentials; TicketError with the reason."""
        with self._translated_errors():
            info = self._jira().server_info()
        return f"Jira {info.get('version', '?')} at {self.url}"

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        import requests
        from jira.exceptions import JIRAError

        try:
            yield
        except JIRAError as error:
            status = error.status_code
            retryable = status is not None and (status == 429 or status >= 500)
            raise TicketError(self._reason(error), retryable=retryable) from error
        except requests.Timeout as error:
            raise TicketError(
                f"Jira did not answer within {self.timeout:g} s", retryable=True
            ) from error
        except requests.RequestException as error:
            raise TicketError(f"Jira is unreachable at {self.url}", retryable=True) from error

    def fields(
        self,
        incident: Incident,
        analysis: Analysis | None,
        permalink: str | None,
        timeline: Sequence[TimelineEvent] = (),
    ) -> dict[str, Any]:
        """The `fields` of the create request, by key and name so no id lookup is needed."""
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": summary(incident),
            "description": description(incident, analysis, permalink, timeline),
            "labels": self.labels,
        }
        if self.components:
            fields["components"] = [{"name": name} for name in self.components]
        priority = self.priorities.get(incident.severity)
        if priority:
            fields["priority"] = {"name": priority}
        return fields

    def _jira(self) -> JIRA:
        """The client, built on first use: constructing one at startup would need Jira to be up."""
        with self._lock:
            if self._client is None:
                from jira import JIRA

                self._client = JIRA(
                    server=self.url,
                    basic_auth=self._credentials,
                    timeout=self.timeout,
                    max_retries=1,
                    get_server_info=False,
                )
            return self._client

    def _reason(self, error: JIRAError) -> str:
        """Turn Jira's status and error body into what a person should fix."""
        status = error.status_code
        messages, errors = _error_body(error)
        if status == 401:
            return "Jira refused the credentials (401)"
        if status == 403:
            return f"Jira denied this account the permission in project {self.project} (403)"
        if status == 429:
            return "Jira is rate limiting requests (429)"
        if status is not None and status >= 500:
            return f"Jira is unavailable ({status})"
        if "project" in errors:
            return f"Jira project {self.project} does not exist"
        if "issuetype" in errors:
            return f"Jira project {self.project} has no issue type '{self.issue_type}'"
        for message in errors.values():
            required = _REQUIRED.match(message)
            if required:
                return f"Jira needs field '{required['field']}'"
        if "components" in errors:
            return f"Jira rejected the components: {errors['components']}"
        details = "; ".join([*messages, *(f"{k}: {v}" for k, v in errors.items())])
        label = f"Jira rejected the issue ({status})" if status else "Jira rejected the issue"
        return f"{label}: {details}" if details else label


def summary(incident: Incident) -> str:
    """`[SEVERITY] title` on one line, within Jira's limit."""
    return _cut(_flatten(f"[{incident.severity}] {incident.title}"), SUMMARY_LIMIT)


def description(
    incident: Incident,
    analysis: Analysis | None,
    permalink: str | None,
    timeline: Sequence[TimelineEvent] = (),
) -> str:
    """The issue body in Jira wiki markup (the format of API v2 text fields).

    Steps are numbered by hand rather than with `#` lists: a `{code}` block ends a wiki list,
    so every step after a command would restart at 1.
    """
    parts: list[str] = []
    if analysis is None:
        parts.append("_No analysis is available for this incident yet._")
    else:
        parts += [
            "h3. Root cause",
            _text(analysis.root_cause),
            "h3. Impact",
            _text(analysis.impact),
        ]
        parts.append("h3. Remediation")
        for number, step in enumerate(analysis.remediation_steps, start=1):
            parts.append(f"{number}. {_text(step.action)}")
            if step.command:
                parts.append(f"{{code}}\n{step.command}\n{{code}}")
    parts.append("h3. Incident")
    facts = [
        ("Id", incident.id),
        ("Source", incident.source),
        ("Resource", incident.resource or "-"),
        ("First seen", incident.opened_at.isoformat()),
        ("Last seen", incident.last_seen_at.isoformat()),
        ("Occurrences", str(incident.occurrences)),
    ]
    parts.append("\n".join(f"* *{name}:* {_text(value)}" for name, value in facts))
    if timeline:
        parts.append("h3. Timeline")
        shown = timeline[-TIMELINE_LIMIT:]
        lines = [
            f"* {event.at.strftime('%Y-%m-%d %H:%M:%S')} UTC {event.kind.value} by "
            f"{_text(event.actor)}" + (f": {_text(event.detail)}" if event.detail else "")
            for event in shown
        ]
        if len(timeline) > len(shown):
            lines.insert(0, f"_{len(timeline) - len(shown)} earlier events not shown._")
        parts.append("\n".join(lines))
    if permalink:
        parts.append(f"[Slack thread|{permalink}]")
    body = "\n\n".join(parts)
    if len(body) > DESCRIPTION_LIMIT:
        body = body[:DESCRIPTION_LIMIT] + "\n\n_(truncated)_"
    return body


def _text(value: str) -> str:
    """Escape the characters that would open a wiki macro or link inside free text."""
    return re.sub(r"([{}\[\]])", r"\\\1", value)


def _flatten(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_body(error: JIRAError) -> tuple[list[str], dict[str, str]]:
    """`errorMessages` and `errors` of Jira's error body; empty when it is not JSON."""
    try:
        body: Any = error.response.json() if error.response is not None else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ([error.text] if error.text else []), {}
    messages = body.get("errorMessages") or []
    errors = body.get("errors") or {}
    return (
        [str(message) for message in messages] if isinstance(messages, list) else [],
        {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
    )
