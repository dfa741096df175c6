"""The Slack pacer: per-channel posts, workspace-wide updates, priorities and supersession.

Time is a `LoopClock` moved by hand, and a request is granted (or not) the moment it is
made or the clock passes its turn, so every assertion is about order and counts, never
about how long something took.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.slack_pacing import (
    POST,
    POST_BURST,
    UPDATE,
    UPDATE_BURST,
    UPDATES,
    Budget,
    NoTurn,
    Pacer,
    Priority,
    Rate,
    Ticket,
    posts_in,
    slack_rates,
)
from tests.conftest import LoopClock


def granted(tickets: list[Ticket]) -> list[bool]:
    return [ticket.granted for ticket in tickets]


def exhausted(pacer: Pacer, budget: Budget, burst: int) -> None:
    """Spend the budget's burst, so that the next request has to wait."""
    assert all(pacer.request(budget, Priority.USER).granted for _ in range(burst))


async def test_posts_burst_then_go_one_per_second_in_each_channel():
    clock = LoopClock()
    pacer = Pacer({POST: Rate(1.0, burst=3)}, clock)

    c1 = [pacer.request(posts_in("C1"), Priority.CHANGE) for _ in range(5)]
    c2 = pacer.request(posts_in("C2"), Priority.CHANGE)

    assert granted(c1) == [True, True, True, False, False]
    assert c2.granted, "each channel has its own budget"
    clock.advance(0.99)
    assert granted(c1) == [True, True, True, False, False]
    clock.advance(0.01)
    assert granted(c1) == [True, True, True, True, False]
    clock.advance(1.0)
    assert all(granted(c1)) and pacer.waiting == 0


async def test_updates_share_one_budget_across_channels_and_incidents():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(50 / 60, burst=5)}, clock)

    updates = [pacer.request(UPDATES, Priority.CHANGE, key=f"INC-{n}") for n in range(8)]

    assert sum(granted(updates)) == 5
    clock.advance(60 / 50)
    assert sum(granted(updates)) == 6
    clock.advance(2 * 60 / 50)
    assert all(granted(updates))


async def test_sustained_rate_over_a_minute_respects_the_limit():
    """However many wait, a minute grants the burst plus the rate, and no more."""
    clock = LoopClock()
    pacer = Pacer(slack_rates(1.0, 50 / 60), clock)

    updates = [pacer.request(UPDATES, Priority.REPEAT, key=f"INC-{n}") for n in range(200)]
    posts = [pacer.request(posts_in("C1"), Priority.CHANGE) for _ in range(200)]
    clock.advance(60)

    assert sum(granted(updates)) == 5 + 50
    assert sum(granted(posts)) == 3 + 60


async def test_waiters_go_by_priority_then_in_order_of_arrival():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    exhausted(pacer, UPDATES, 1)

    first_repeat = pacer.request(UPDATES, Priority.REPEAT, key="INC-1")
    second_repeat = pacer.request(UPDATES, Priority.REPEAT, key="INC-2")
    note = pacer.request(UPDATES, Priority.NOTE, key="INC-3")
    news = pacer.request(UPDATES, Priority.CHANGE, key="INC-4")
    click = pacer.request(UPDATES, Priority.USER, key="INC-5")

    served = []
    waiting = [first_repeat, second_repeat, note, news, click]
    for _ in waiting:
        clock.advance(1.0)
        served += [t.key for t in waiting if t.granted and t.key not in served]
    assert served == ["INC-5", "INC-4", "INC-3", "INC-1", "INC-2"]


async def test_a_click_waits_only_for_the_next_token_however_long_the_storm():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(50 / 60, burst=5)}, clock)
    storm = [pacer.request(UPDATES, Priority.REPEAT, key=f"INC-{n}") for n in range(60)]

    click = pacer.request(UPDATES, Priority.USER, key="INC-7")
    clock.advance(60 / 50)

    assert click.granted
    assert sum(granted(storm)) == 5


async def test_a_waiting_catch_up_serves_for_later_ones_of_its_incident():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    exhausted(pacer, UPDATES, 1)

    other = pacer.request(UPDATES, Priority.REPEAT, key="INC-2", coalesce=True)
    waiting = pacer.request(UPDATES, Priority.REPEAT, key="INC-1", coalesce=True)
    repeats = [
        pacer.request(UPDATES, Priority.REPEAT, key="INC-1", coalesce=True) for _ in range(50)
    ]

    assert all(t.done and not t.granted for t in repeats), "served by the waiting one"
    assert pacer.waiting == 2, "one waiting update per incident, not a backlog"
    news = pacer.request(UPDATES, Priority.CHANGE, key="INC-1", coalesce=True)
    assert news.done and not news.granted
    assert waiting.priority is Priority.CHANGE, "the waiting one took the news' priority"
    clock.advance(1.0)
    assert waiting.granted and not other.granted


async def test_a_newer_request_supersedes_a_waiting_catch_up_and_keeps_its_place():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    exhausted(pacer, UPDATES, 1)

    stale = pacer.request(UPDATES, Priority.REPEAT, key="INC-1", coalesce=True)
    other = pacer.request(UPDATES, Priority.REPEAT, key="INC-2", coalesce=True)
    analysis = pacer.request(UPDATES, Priority.REPEAT, key="INC-1")

    assert stale.done and not stale.granted
    assert pacer.waiting == 2
    clock.advance(1.0)
    assert analysis.granted and not other.granted, "it went in the superseded one's place"


async def test_requests_that_need_their_own_turn_are_never_merged():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    exhausted(pacer, UPDATES, 1)

    analysis = pacer.request(UPDATES, Priority.CHANGE, key="INC-1")
    click = pacer.request(UPDATES, Priority.USER, key="INC-1")

    clock.advance(2.0)
    assert analysis.granted and click.granted


async def test_an_unspent_turn_goes_back_to_the_next_in_line():
    clock = LoopClock()
    pacer = Pacer({POST: Rate(1.0, burst=1)}, clock)
    mine = pacer.request(posts_in("C1"), Priority.CHANGE)
    next_in_line = pacer.request(posts_in("C1"), Priority.CHANGE)
    assert mine.granted and not next_in_line.granted

    mine.release()

    assert next_in_line.granted
    assert next_in_line.take(posts_in("C1"))
    next_in_line.release()
    assert not pacer.request(posts_in("C1"), Priority.CHANGE).granted, "a spent turn stays spent"


async def test_a_turn_is_spent_once_and_on_its_own_budget_only():
    pacer = Pacer({POST: Rate(1.0, burst=2)}, LoopClock())
    turn = pacer.request(posts_in("C1"), Priority.CHANGE)

    assert not turn.take(UPDATES)
    assert not turn.take(posts_in("C2"))
    assert turn.take(posts_in("C1"))
    assert not turn.take(posts_in("C1"))


async def test_a_cancelled_waiter_leaves_the_line():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    exhausted(pacer, UPDATES, 1)
    ticket = pacer.request(UPDATES, Priority.CHANGE, key="INC-1")
    waiter = asyncio.ensure_future(ticket.wait())
    await asyncio.sleep(0)  # let the waiter start awaiting its turn

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert pacer.waiting == 0
    clock.advance(1.0)
    assert pacer.request(UPDATES, Priority.CHANGE).granted, "the token was not given away"


async def test_turn_returns_when_the_turn_comes():
    clock = LoopClock()
    pacer = Pacer({POST: Rate(1.0, burst=1)}, clock)
    await pacer.turn(posts_in("C1"), Priority.USER)
    waiting = asyncio.ensure_future(pacer.turn(posts_in("C1"), Priority.USER))
    await asyncio.sleep(0)
    assert not waiting.done()

    clock.advance(1.0)

    await waiting
    assert not pacer.request(posts_in("C1"), Priority.USER).granted, "its turn was spent"


async def test_stopping_drops_catch_ups_at_once_and_the_rest_after_the_grace():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    exhausted(pacer, UPDATES, 1)
    catch_up = pacer.request(UPDATES, Priority.REPEAT, key="INC-1", coalesce=True)
    analyses = [pacer.request(UPDATES, Priority.CHANGE, key=f"INC-{n}") for n in (2, 3, 4)]

    pacer.stop(2.5)
    pacer.stop(60)  # only the first stop counts

    assert catch_up.done and not catch_up.granted
    clock.advance(1.0)
    assert granted(analyses) == [True, False, False]
    late = pacer.request(UPDATES, Priority.REPEAT, key="INC-5", coalesce=True)
    assert late.done and not late.granted, "no catch-up waits once stopping"
    clock.advance(1.0)
    assert granted(analyses) == [True, True, False]
    clock.advance(0.5)
    assert analyses[2].done and not analyses[2].granted, "dropped at the end of the grace"
    with pytest.raises(NoTurn):
        await pacer.turn(UPDATES, Priority.USER)


async def test_methods_without_a_rate_are_not_paced():
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, LoopClock())

    assert all(pacer.request(Budget("views.open"), Priority.USER).granted for _ in range(100))
    assert all(pacer.request(posts_in("C1"), Priority.CHANGE).granted for _ in range(100))


def test_slack_rates_are_per_channel_posts_and_workspace_updates():
    rates = slack_rates(1.0, 50 / 60)

    assert rates == {POST: Rate(1.0, POST_BURST), UPDATE: Rate(50 / 60, UPDATE_BURST)}
    assert posts_in("C1") != posts_in("C2")
    assert UPDATES == Budget(UPDATE)
