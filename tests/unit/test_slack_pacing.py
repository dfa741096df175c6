"""The Slack pacer: per-channel posts, workspace-wide updates, priorities and supersession.

Time is a `LoopClock` moved by hand: a call goes the moment the clock passes its token, so
every assertion is about order and counts, never about how long something took. `settle()`
lets the tasks run that can (it yields to the event loop; no time passes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

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
    posts_in,
    slack_rates,
)
from tests.conftest import LoopClock


async def settle() -> None:
    """Let every task that can go on run until it waits again: a turn is handed over, its
    call let go, and the next turn handed over, in a few steps of the loop each."""
    for _ in range(20):
        await asyncio.sleep(0)


def calls(
    pacer: Pacer, budget: Budget, priority: Priority, count: int, key: str | None = None
) -> list[asyncio.Task[None]]:
    """`count` calls made as a sync makes them: wait for the turn, then spend it."""

    async def call() -> None:
        ticket = pacer.request(budget, priority, key=key)
        assert await ticket.wait()
        assert await ticket.spend(budget)

    return [asyncio.ensure_future(call()) for _ in range(count)]


def gone(tasks: Sequence[asyncio.Future[Any]]) -> int:
    return sum(task.done() for task in tasks)


async def test_posts_burst_then_go_one_per_second_in_each_channel():
    clock = LoopClock()
    pacer = Pacer({POST: Rate(1.0, burst=3)}, clock)

    c1 = calls(pacer, posts_in("C1"), Priority.CHANGE, 5)
    c2 = calls(pacer, posts_in("C2"), Priority.CHANGE, 1)
    await settle()

    assert (gone(c1), gone(c2)) == (3, 1), "each channel has its own budget"
    clock.advance(0.99)
    await settle()
    assert gone(c1) == 3
    clock.advance(0.01)
    await settle()
    assert gone(c1) == 4
    clock.advance(1.0)
    await settle()
    assert gone(c1) == 5 and pacer.waiting == 0


async def test_updates_share_one_budget_across_channels_and_incidents():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(50 / 60, burst=5)}, clock)

    updates = [t for n in range(8) for t in calls(pacer, UPDATES, Priority.CHANGE, 1, f"I{n}")]
    await settle()

    assert gone(updates) == 5
    clock.advance(60 / 50)
    await settle()
    assert gone(updates) == 6
    clock.advance(2 * 60 / 50)
    await settle()
    assert gone(updates) == 8


async def test_the_sustained_rate_over_a_minute_is_the_published_one():
    """However many wait, a minute lets the burst go and then the rate, and no more."""
    clock = LoopClock()
    pacer = Pacer(slack_rates(1.0, 50 / 60), clock)
    updates = calls(pacer, UPDATES, Priority.REPEAT, 200)
    posts = calls(pacer, posts_in("C1"), Priority.CHANGE, 200)

    for _ in range(599):
        await settle()
        clock.advance(0.1)
    await settle()

    assert gone(updates) == UPDATE_BURST + 49  # 59.9 s at 50 a minute
    assert gone(posts) == POST_BURST + 59  # 59.9 s at 1 a second


async def test_calls_never_bunch_however_late_their_turns_are_spent():
    """Turns whose syncs were slow to read the store are spent together: their calls
    still reach Slack a second apart beyond the burst."""
    clock = LoopClock()
    pacer = Pacer({POST: Rate(1.0, burst=3)}, clock)
    slow = [pacer.request(posts_in("C1"), Priority.CHANGE) for _ in range(3)]
    later = calls(pacer, posts_in("C1"), Priority.CHANGE, 3)
    clock.advance(10.0)
    await settle()
    assert all(t.granted for t in slow) and gone(later) == 0, "three turns out at once"

    spent = [asyncio.ensure_future(t.spend(posts_in("C1"))) for t in slow]
    await settle()

    assert gone(spent) == 3 and gone(later) == 0
    for went in (1, 2, 3):
        clock.advance(1.0)
        await settle()
        assert gone(later) == went


async def test_waiters_go_by_priority_then_in_order_of_arrival():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    busy = pacer.request(UPDATES, Priority.CHANGE)
    order: list[str] = []

    async def call(key: str, priority: Priority) -> None:
        ticket = pacer.request(UPDATES, priority, key=key)
        assert await ticket.wait()
        assert await ticket.spend(UPDATES)
        order.append(key)

    waiting = [
        asyncio.ensure_future(call(key, priority))
        for key, priority in [
            ("repeat-1", Priority.REPEAT),
            ("repeat-2", Priority.REPEAT),
            ("note", Priority.NOTE),
            ("news", Priority.CHANGE),
        ]
    ]
    await settle()
    assert await busy.spend(UPDATES)
    for _ in waiting:
        clock.advance(1.0)
        await settle()

    assert order == ["news", "note", "repeat-1", "repeat-2"]


async def test_a_click_goes_with_the_next_token_however_long_the_storm():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(50 / 60, burst=5)}, clock)
    storm = calls(pacer, UPDATES, Priority.REPEAT, 60)
    await settle()

    click = calls(pacer, UPDATES, Priority.USER, 1, key="INC-7")
    await settle()
    assert gone(click) == 0
    clock.advance(60 / 50)
    await settle()

    assert gone(click) == 1
    assert gone(storm) == 5, "the burst, then the click"


async def test_a_waiting_catch_up_serves_for_later_ones_of_its_incident():
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, LoopClock())
    busy = pacer.request(UPDATES, Priority.CHANGE)

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
    busy.release()
    assert waiting.granted and not other.granted


async def test_a_newer_request_supersedes_a_waiting_catch_up_and_keeps_its_place():
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, LoopClock())
    busy = pacer.request(UPDATES, Priority.CHANGE)

    stale = pacer.request(UPDATES, Priority.REPEAT, key="INC-1", coalesce=True)
    other = pacer.request(UPDATES, Priority.REPEAT, key="INC-2", coalesce=True)
    analysis = pacer.request(UPDATES, Priority.REPEAT, key="INC-1")

    assert stale.done and not stale.granted
    assert pacer.waiting == 2
    busy.release()
    assert analysis.granted and not other.granted, "it went in the superseded one's place"


async def test_requests_that_need_their_own_turn_are_never_merged():
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, LoopClock())
    busy = pacer.request(UPDATES, Priority.CHANGE)

    analysis = pacer.request(UPDATES, Priority.CHANGE, key="INC-1")
    click = pacer.request(UPDATES, Priority.USER, key="INC-1")

    assert click.granted, "a person's request is let out at once"
    busy.release()
    assert not analysis.granted, "the click's turn is still out"
    click.release()
    assert analysis.granted


async def test_an_unspent_turn_goes_back_to_the_next_in_line():
    pacer = Pacer({POST: Rate(1.0, burst=1)}, LoopClock())
    mine = pacer.request(posts_in("C1"), Priority.CHANGE)
    next_in_line = pacer.request(posts_in("C1"), Priority.CHANGE)
    assert mine.granted and not next_in_line.granted

    mine.release()

    assert next_in_line.granted
    assert await next_in_line.spend(posts_in("C1"))
    next_in_line.release()  # spent: nothing to give back
    after = [pacer.request(posts_in("C1"), Priority.CHANGE) for _ in range(2)]
    assert [t.granted for t in after] == [True, False], "one turn out, as the burst says"


async def test_a_turn_is_spent_once_and_on_its_own_budget_only():
    pacer = Pacer({POST: Rate(1.0, burst=2)}, LoopClock())
    turn = pacer.request(posts_in("C1"), Priority.CHANGE)

    assert not await turn.spend(UPDATES)
    assert not await turn.spend(posts_in("C2"))
    assert await turn.spend(posts_in("C1"))
    assert not await turn.spend(posts_in("C1"))


async def test_a_cancelled_waiter_leaves_the_line_and_a_cancelled_call_gives_its_turn_back():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    busy = pacer.request(UPDATES, Priority.CHANGE)
    waiter = asyncio.ensure_future(pacer.request(UPDATES, Priority.CHANGE).wait())
    await settle()

    waiter.cancel()
    await settle()
    assert waiter.cancelled() and pacer.waiting == 0

    assert await busy.spend(UPDATES)
    late = calls(pacer, UPDATES, Priority.CHANGE, 1)
    await settle()
    assert not late[0].done(), "waiting for the next token"
    late[0].cancel()
    await settle()
    assert pacer.request(UPDATES, Priority.CHANGE).granted, "its turn came back"


async def test_turn_returns_when_the_call_may_go():
    clock = LoopClock()
    pacer = Pacer({POST: Rate(1.0, burst=1)}, clock)
    await pacer.turn(posts_in("C1"), Priority.USER)
    waiting = asyncio.ensure_future(pacer.turn(posts_in("C1"), Priority.USER))
    await settle()
    assert not waiting.done()

    clock.advance(1.0)
    await settle()

    assert waiting.done()


async def test_stopping_drops_catch_ups_at_once_and_the_rest_after_the_grace():
    clock = LoopClock()
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, clock)
    busy = pacer.request(UPDATES, Priority.CHANGE)
    catch_up = pacer.request(UPDATES, Priority.REPEAT, key="INC-1", coalesce=True)
    analyses = [pacer.request(UPDATES, Priority.CHANGE, key=f"INC-{n}") for n in (2, 3, 4)]

    pacer.stop(1.5)
    pacer.stop(60)  # only the first stop counts

    assert catch_up.done and not catch_up.granted
    late = pacer.request(UPDATES, Priority.REPEAT, key="INC-5", coalesce=True)
    assert late.done and not late.granted, "no catch-up waits once stopping"
    assert await busy.spend(UPDATES)
    assert analyses[0].granted
    spending = asyncio.ensure_future(analyses[0].spend(UPDATES))
    clock.advance(1.0)
    await settle()
    assert spending.done() and analyses[1].granted
    clock.advance(0.5)
    assert analyses[2].done and not analyses[2].granted, "dropped at the end of the grace"
    with pytest.raises(NoTurn):
        await pacer.turn(UPDATES, Priority.CHANGE)


async def test_methods_without_a_rate_are_not_paced():
    pacer = Pacer({UPDATE: Rate(1.0, burst=1)}, LoopClock())

    for budget in (Budget("views.open"), posts_in("C1")):
        turns = [pacer.request(budget, Priority.USER) for _ in range(100)]
        assert all(t.granted for t in turns)
        assert all([await t.spend(budget) for t in turns])


def test_slack_rates_are_per_channel_posts_and_workspace_updates():
    rates = slack_rates(1.0, 50 / 60)

    assert rates == {POST: Rate(1.0, POST_BURST), UPDATE: Rate(50 / 60, UPDATE_BURST)}
    assert posts_in("C1") != posts_in("C2")
    assert UPDATES == Budget(UPDATE)
