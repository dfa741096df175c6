"""The console publisher prints what Slack will post: new, coalesced repeats, resolutions."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from blocks.kit import Message, context, fields, header, section
from blocks.thread import escalation_reminder
from bot.console import ConsolePublisher
from incidents.models import AlertStatus
from tests.conftest import make_alert
from tests.samples import make_incident


def _publisher() -> tuple[ConsolePublisher, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    return ConsolePublisher(console, timedelta(minutes=10)), out


async def test_new_repeats_and_resolution(service, clock):
    publisher, out = _publisher()

    await publisher.publish(service.record(make_alert()))
    for _ in range(50):
        await publisher.publish(service.record(make_alert()))
    clock.advance(minutes=7)
    await publisher.publish(service.record(make_alert(status=AlertStatus.RESOLVED)))
    await publisher.close()

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("NEW      INC-")
    assert "HIGH Database connection failed (test)" in lines[0]
    assert lines[1].strip() == "PostgreSQL connection timeout after 30s"
    repeats = [line for line in lines if line.startswith("REPEAT")]
    assert len(repeats) == 1, "50 repeats within the interval print once"
    assert "2 occurrences" in repeats[0]
    assert lines[-1].startswith("RESOLVED ")
    assert lines[-1].endswith("after 7m, 51 occurrence(s)")


async def test_pending_repeats_are_flushed_on_close(service):
    publisher, out = _publisher()
    for _ in range(3):
        await publisher.publish(service.record(make_alert()))
    await publisher.close()

    assert "3 occurrences" in out.getvalue().splitlines()[-1]


async def test_alert_text_cannot_restyle_the_terminal(service):
    publisher, out = _publisher()
    await publisher.publish(service.record(make_alert("[link=http://evil]click[/link] [bold]x")))

    assert "[link=http://evil]click[/link] [bold]x" in out.getvalue()


async def test_a_flapping_reopen_says_so(service, clock):
    publisher, out = _publisher()
    await publisher.publish(service.record(make_alert()))
    for _ in range(3):
        clock.advance(minutes=1)
        await publisher.publish(service.record(make_alert(status=AlertStatus.RESOLVED)))
        clock.advance(minutes=1)
        await publisher.publish(service.record(make_alert()))

    reopens = [line for line in out.getvalue().splitlines() if line.startswith("REOPENED")]
    assert len(reopens) == 3
    assert "(flapping)" in reopens[-1] and "(flapping)" not in reopens[0]


async def test_reminders_and_the_digest_print_as_text_without_markup():
    publisher, out = _publisher()
    incident = make_incident(title="[bold]Disk[/bold] full")
    reminder = escalation_reminder(incident, 1, 3, timedelta(minutes=15), "S0ONCALL")

    assert await publisher.post_in_thread(incident.id, reminder) == "console"
    digest = Message(
        text="digest",
        blocks=[header("Daily digest"), section("*Opened* 3"),
                fields(["*MTTA* 4m", "*MTTR* 1h"]), context(["2 still open"])],
    )  # fmt: skip
    await publisher.post_to_channel(digest)

    printed = out.getvalue()
    assert printed.startswith(f"NOTE     {incident.id} ⏰ <!subteam^S0ONCALL> ")
    assert "[bold]Disk[/bold] full" in printed, "rich markup in a title is printed, not applied"
    lines = printed.splitlines()
    assert lines[-5:] == ["Daily digest", "*Opened* 3", "*MTTA* 4m", "*MTTR* 1h", "2 still open"]
