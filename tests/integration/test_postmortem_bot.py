"""Post-mortems as the bot and the command line make them: from a real store, through the
Claude fake when Claude answers, offline (and saying why) when it does not, and printed by
`incident-bot postmortem <id>` as a real process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from anthropic import AsyncAnthropic

from analysis.models import AnalyzerKind
from analysis.postmortem import PostMortemWriter
from bot.postmortems import IncidentMissingError, PostMortems
from incidents.lifecycle import IncidentService
from incidents.models import Severity
from incidents.sqlite import SqliteStore
from tests.conftest import BRIEF_ALERT, ManualClock, make_alert
from tests.fakes.anthropic_server import Error, FakeAnthropic
from tests.integration.test_cli_analyze import _env
from tests.integration.test_postmortem_claude import GOOD_POSTMORTEM

pytestmark = pytest.mark.integration


@pytest.fixture
async def claude() -> AsyncIterator[tuple[FakeAnthropic, AsyncAnthropic]]:
    async with FakeAnthropic(default_tool_input=GOOD_POSTMORTEM) as fake:
        client = AsyncAnthropic(api_key="sk-ant-test", base_url=fake.url, max_retries=0,
                                timeout=5)  # fmt: skip
        yield fake, client
        await client.close()


def _resolved(service: IncidentService, clock: ManualClock) -> str:
    incident = service.record(make_alert(severity=Severity.CRITICAL)).incident
    assert incident is not None
    clock.advance(minutes=3)
    service.acknowledge(incident.id, "U7")
    clock.advance(minutes=30)
    service.resolve(incident.id, "U7")
    return incident.id


async def test_claude_drafts_it_and_an_overloaded_claude_leaves_the_offline_draft(
    store: SqliteStore,
    service: IncidentService,
    clock: ManualClock,
    claude: tuple[FakeAnthropic, AsyncAnthropic],
):
    fake, client = claude
    incident_id = _resolved(service, clock)
    writer = PostMortemWriter(client, model="claude-sonnet-4-6", fast_model="claude-haiku-4-5")
    drafts = PostMortems(store, writer, ack_targets=lambda s: timedelta(minutes=5))

    incident, drafted = await drafts.draft(incident_id)
    assert incident.id == incident_id
    assert (drafted.written_by, drafted.model) == (AnalyzerKind.CLAUDE, "claude-sonnet-4-6")
    assert drafted.title == GOOD_POSTMORTEM["title"]

    fake.enqueue(Error.overloaded())
    _, fallback = await drafts.draft(incident_id)
    assert fallback.written_by is AnalyzerKind.OFFLINE
    assert "timeline alone" in fallback.note and "overloaded" in fallback.note.lower()
    assert any("3m" in point for point in fallback.went_well), "acknowledged within the 5m target"

    with pytest.raises(IncidentMissingError):
        await drafts.draft("INC-NOPE")


def test_the_command_line_prints_the_offline_draft_of_a_stored_incident(tmp_path: Path):
    env = _env(tmp_path)
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(BRIEF_ALERT))
    analyzed = subprocess.run([sys.executable, "-m", "bot.cli", "analyze", str(alert), "--json"],
                              env=env, capture_output=True, timeout=60, check=True)  # fmt: skip
    incident_id = json.loads(analyzed.stdout)["incidents"][0]["id"]

    printed = subprocess.run([sys.executable, "-m", "bot.cli", "postmortem", incident_id.lower()],
                             env=env, capture_output=True, timeout=60)  # fmt: skip
    written = subprocess.run(
        [sys.executable, "-m", "bot.cli", "postmortem", incident_id, "-o", str(tmp_path / "pm.md")],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    missing = subprocess.run([sys.executable, "-m", "bot.cli", "postmortem", "INC-NOPE"],
                             env=env, capture_output=True, timeout=60)  # fmt: skip

    assert printed.returncode == 0, printed.stderr
    document = printed.stdout.decode()
    assert document.startswith("# ") and incident_id in document
    assert "## Timeline" in document and "timeline alone" in document
    assert written.returncode == 0 and (tmp_path / "pm.md").read_text() == document
    assert missing.returncode == 2 and b"there is no incident INC-NOPE" in missing.stderr


async def test_drafts_of_two_incidents_at_once_do_not_mix(
    store: SqliteStore, service: IncidentService, clock: ManualClock
):
    first = _resolved(service, clock)
    second = service.record(make_alert("Queue backlog", severity=Severity.LOW)).incident
    assert second is not None
    drafts = PostMortems(store, None)

    (one, a), (two, b) = await asyncio.gather(drafts.draft(first), drafts.draft(second.id))

    assert (one.id, two.id) == (first, second.id)
    assert a.written_by is b.written_by is AnalyzerKind.OFFLINE
    assert "Queue backlog" not in a.summary and "Queue backlog" in b.summary + b.title
