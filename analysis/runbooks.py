"""Runbooks: what the team already knows about a kind of alert, matched by pattern.

`RUNBOOKS_FILE` names a YAML file like this one; the first entry whose conditions all match
an alert is its runbook, so order the file from the most specific entry to the most general:

```yaml
runbooks:
  - name: Checkout API 5xx
    match:
      alarm_name: "checkout-*-5xx*"       # the CloudWatch alarm name, or Alertmanager alertname
      labels: {env: prod}                 # every label named must match
    url: https://wiki.example.com/runbooks/checkout-5xx
    notes: |
      Roll back the last deploy first; the payments provider's status page is linked there.
  - name: Any disk filling up
    match: {fingerprint: "disk-*"}
    url: https://wiki.example.com/runbooks/disk
```

Patterns are shell globs (`*`, `?`, `[abc]`) compared without regard to case. The link shows
on the incident's message; the name, link and notes go to Claude as context, so that the
suggested remediation starts from the team's own procedure rather than a generic one. The
file is read at start-up (a change needs a restart), and a mistake in it stops start-up with
the entry it is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from analysis.context import AnalysisContext, ContextSection, Gatherer
from incidents.models import Alert, Incident

NOTES_MAX = 2000
_ALARM_NAME_LABELS = ("alarm_name", "alertname")


class RunbookMatch(BaseModel):
    """The conditions of one runbook; an entry must name at least one, and all must hold."""

    model_config = ConfigDict(extra="forbid")

    alarm_name: str | None = None
    fingerprint: str | None = None
    source: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def matches(self, alert: Alert) -> bool:
        if self.alarm_name is not None and not _glob(alarm_name(alert), self.alarm_name):
            return False
        if self.fingerprint is not None and not _glob(alert.fingerprint, self.fingerprint):
            return False
        if self.source is not None and not _glob(alert.source, self.source):
            return False
        return all(
            name in alert.labels and _glob(alert.labels[name], pattern)
            for name, pattern in self.labels.items()
        )

    @property
    def is_empty(self) -> bool:
        return (
            self.alarm_name is None
            and self.fingerprint is None
            and self.source is None
            and (not self.labels)
        )


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=150)
    url: str
    notes: str = Field(default="", max_length=NOTES_MAX)
    match: RunbookMatch

    @field_validator("url")
    @classmethod
    def _url_is_a_web_link(cls, url: str) -> str:
        """Only http(s): the link is rendered on every matching message, where a `javascript:`
        or `slack://` link would be a trap, and Slack's link syntax forbids `|`, `<` and `>`."""
        url = url.strip()
        if not url.lower().startswith(("https://", "http://")) or any(c in url for c in "|<> "):
            raise ValueError(f"{url!r} is not an http(s) link")
        return url


class RunbookError(Exception):
    """The runbooks file cannot be used; the message names the file and the entry."""


class Runbooks:
    """The loaded file: `find(alert)` is the first runbook that matches, or None."""

    def __init__(self, entries: Sequence[Runbook] = ()) -> None:
        self.entries = tuple(entries)

    def find(self, alert: Alert) -> Runbook | None:
        return next((entry for entry in self.entries if entry.match.matches(alert)), None)

    def __len__(self) -> int:
        return len(self.entries)


def load_runbooks(path: Path | None) -> Runbooks:
    """No file configured: no runbooks. A file that is missing, not YAML, or has an entry
    that does not validate is a `RunbookError` naming the problem."""
    if path is None:
        return Runbooks()
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunbookError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RunbookError(f"{path} is not valid YAML: {exc}") from None
    items = document.get("runbooks") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise RunbookError(f"{path} must hold a list under `runbooks:`")
    entries = []
    for number, item in enumerate(items, start=1):
        try:
            entry = Runbook.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
                for error in exc.errors()
            )
            raise RunbookError(f"{path}, runbook {number}: {problems}") from None
        if entry.match.is_empty:
            raise RunbookError(f"{path}, runbook {number} ({entry.name}): `match` names nothing")
        entries.append(entry)
    return Runbooks(entries)


class RunbookGatherer:
    """The context of another gatherer, plus the alert's runbook as a `runbook` section."""

    def __init__(self, inner: Gatherer, runbooks: Runbooks) -> None:
        self.inner = inner
        self.runbooks = runbooks

    async def gather(self, incident: Incident, alert: Alert) -> AnalysisContext:
        context = await self.inner.gather(incident, alert)
        runbook = self.runbooks.find(alert)
        if runbook is not None:
            context.sections.append(ContextSection(name="runbook", text=runbook_context(runbook)))
        return context


def alarm_name(alert: Alert) -> str:
    """The alarm's own name where the sender gives one, else the alert's title."""
    return next(
        (alert.labels[label] for label in _ALARM_NAME_LABELS if alert.labels.get(label)),
        alert.title,
    )


def runbook_context(runbook: Runbook) -> str:
    """The runbook as the prompt shows it."""
    text = f"{runbook.name}: {runbook.url}"
    return f"{text}\n{runbook.notes.strip()}" if runbook.notes.strip() else text


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatchcase(value.lower(), pattern.lower())
