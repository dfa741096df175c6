"""The cause and the fix the team confirms: read from a thread reply, asked in a modal, shown
on the message and in the thread, and given to the next analysis as "last time"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analysis.lessons import CAUTION, LESSONS, lesson_line, lessons_from, lessons_text
from analysis.models import PastLesson
from blocks.ids import ActionId, BlockId, CallbackId, ModalMetadata
from blocks.limits import assert_view_within_slack_limits
from blocks.modals import confirm_modal
from blocks.thread import confirmed_note
from bot.slack_confirm import parse_confirmation
from incidents.models import ConfirmedCause
from tests.unit.test_blocks import (
    ACK_USER,
    HOSTILE_TEXT,
    T0,
    assert_safe,
    block_texts,
    make_analysis,
    make_incident,
    render,
)


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        ("cause: pool sized for 10", ("pool sized for 10", None)),
        ("Fix: raised max_connections", (None, "raised max_connections")),
        ("*cause:* pool\nstill pool\nfix: restart", ("pool still pool", "restart")),
        ("fix: restart the tasks\ncause: a bad deploy", ("a bad deploy", "restart the tasks")),
        ("> cause: quoted", ("quoted", None)),
        ("  CAUSE :  spaced  ", ("spaced", None)),
        (
            "&gt; fix: pool &amp; cache <@U1> per <https://runbook.example/db|the runbook>",
            (None, "pool & cache @U1 per the runbook"),
        ),
    ],
)
def test_a_reply_opening_with_cause_or_fix_confirms(reply: str, said: tuple[str, str]) -> None:
    assert parse_confirmation(reply) == said


@pytest.mark.parametrize(
    "reply",
    [
        "what caused this?",
        "the cause: unknown",
        "because: x",
        "cause:",
        "fix:   \n  ",
        "",
        "cause: could it be the deploy?",
    ],
)
def test_anything_else_is_a_question_for_claude(reply: str) -> None:
    assert parse_confirmation(reply) is None


def test_the_modal_asks_for_both_optional_and_prefilled() -> None:
    incident = make_incident(confirmed=ConfirmedCause(cause="disk full", by=ACK_USER, at=T0))
    view = confirm_modal(incident)

    assert_view_within_slack_limits(view)
    assert view["callback_id"] == CallbackId.CONFIRM
    assert ModalMetadata.parse(view["private_metadata"]).incident_id == incident.id
    inputs = {block["block_id"]: block for block in view["blocks"] if block["type"] == "input"}
    cause, fix = inputs[BlockId.CONFIRM_CAUSE], inputs[BlockId.CONFIRM_FIX]
    assert cause["optional"] and fix["optional"]
    assert cause["element"]["action_id"] == ActionId.CONFIRM_CAUSE
    assert cause["element"]["initial_value"] == "disk full"
    assert "initial_value" not in fix["element"]


def test_the_confirmed_note_names_who_and_escapes_their_words() -> None:
    confirmed = ConfirmedCause(cause=HOSTILE_TEXT, fix="restart", by=ACK_USER, at=T0)
    note = confirmed_note(make_incident(confirmed=confirmed))

    text = block_texts(note)
    assert f"<@{ACK_USER}> confirmed the cause:" in text
    assert "and the fix: “restart”" in text and "&lt;!channel&gt;" in text
    assert_safe(note, allowed=(f"<@{ACK_USER}>",))
    with pytest.raises(ValueError, match="no confirmed cause"):
        confirmed_note(make_incident())


def _lesson(**changes: object) -> PastLesson:
    fields: dict[str, object] = {
        "incident_id": "INC-OLD1",
        "title": "Database connection failed",
        "opened_at": T0 - timedelta(days=3),
        "same_alert": True,
        "cause": "pool sized for 10 after the config change",
        "fix": "raised max_connections to 200",
        "confirmed_by": ACK_USER,
    }
    return PastLesson.model_validate({**fields, **changes})


def test_the_lesson_line_says_when_what_and_who() -> None:
    assert lesson_line(_lesson(), T0) == (
        "last time (INC-OLD1, 3d ago): cause pool sized for 10 after the config change, "
        f"fixed by raised max_connections to 200 (confirmed by {ACK_USER})"
    )
    similar = lesson_line(_lesson(same_alert=False, cause=None), T0 + timedelta(hours=5))
    assert similar.startswith("a similar incident (INC-OLD1, 3d 5h ago): fixed by raised")
    assert lessons_text([_lesson()], T0).endswith(CAUTION)
    assert "hypothesis" in CAUTION


def test_lessons_come_from_the_nearest_confirmed_incidents() -> None:
    confirmed = ConfirmedCause(cause="disk full", by="U1", at=T0)
    ranked = [
        (make_incident(id="INC-A"), "same alert"),
        (make_incident(id="INC-B", confirmed=confirmed), "same alert"),
        (make_incident(id="INC-C", confirmed=confirmed), "similar title 0.60"),
        (make_incident(id="INC-D", confirmed=confirmed), "similar title 0.50"),
    ]
    lessons = lessons_from(ranked)
    assert [(x.incident_id, x.same_alert) for x in lessons] == [("INC-B", True), ("INC-C", False)]
    assert len(lessons) == LESSONS


def test_the_message_shows_last_time_and_its_own_confirmation_escaped() -> None:
    confirmed = ConfirmedCause(cause=HOSTILE_TEXT, by=ACK_USER, at=T0)
    incident = make_incident(confirmed=confirmed, last_seen_at=T0)
    own = _lesson(incident_id=incident.id, cause="shown as Confirmed by, not as last time")
    message = render(incident, make_analysis(lessons=[_lesson(fix=HOSTILE_TEXT), own]))

    text = block_texts(message)
    assert ":bulb: Last time (INC-OLD1, 3d ago): cause “pool sized for 10" in text
    assert f"(confirmed by <@{ACK_USER}>)" in text
    assert f":white_check_mark: Confirmed by <@{ACK_USER}>: cause “&lt;!channel&gt;" in text
    assert "shown as Confirmed by" not in text
    assert_safe(message, allowed=(f"<@{ACK_USER}>",))
