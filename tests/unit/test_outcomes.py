"""What a recorded alert sets off (`bot.outcomes.EFFECTS`), read off outcomes the real lifecycle
produces on SQLite: no Slack, no publisher, no Claude."""

from __future__ import annotations

from bot.outcomes import EFFECTS, Effects, Notice, effects_of
from incidents.lifecycle import IncidentService, OutcomeKind
from incidents.models import AlertStatus
from tests.conftest import ManualClock, make_alert


def test_a_new_problem_is_analysed_graphed_and_paged(service: IncidentService) -> None:
    outcome = service.record(make_alert(dedup_key="first"))

    assert outcome.kind is OutcomeKind.OPENED
    assert effects_of(outcome) == Effects(analyze=True, graph=True, notice=Notice.OPENED)


def test_a_repeat_only_updates_the_message(service: IncidentService) -> None:
    service.record(make_alert(dedup_key="first"))

    repeat = service.record(make_alert(dedup_key="second"))

    assert repeat.kind is not OutcomeKind.OPENED
    assert effects_of(repeat) == Effects()


def test_a_resolution_tells_the_channels_and_a_recurrence_starts_over(
    service: IncidentService, clock: ManualClock
) -> None:
    service.record(make_alert(dedup_key="first"))
    resolved = service.record(make_alert(dedup_key="ok", status=AlertStatus.RESOLVED))
    clock.advance(minutes=5)
    again = service.record(make_alert(dedup_key="again"))

    assert resolved.kind is OutcomeKind.RESOLVED
    assert effects_of(resolved) == Effects(notice=Notice.RESOLVED)
    assert again.kind is OutcomeKind.REOPENED
    assert effects_of(again) == Effects(analyze=True, graph=True, notice=Notice.OPENED)


def test_only_openings_reopenings_and_resolutions_set_anything_off() -> None:
    assert set(EFFECTS) == {OutcomeKind.OPENED, OutcomeKind.REOPENED, OutcomeKind.RESOLVED}
    quiet = [kind for kind in OutcomeKind if kind not in EFFECTS]
    assert quiet, "the other outcomes update the message and nothing else"
