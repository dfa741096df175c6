"""Slack's published rate limits, kept by the bot itself rather than learned from 429s.

Slack lets an app post about one message per second per channel (`chat.postMessage`) and
edit about 50 messages per minute across the workspace (`chat.update`, Tier 3), both with
short bursts above that. An alert storm gives the bot more to say than this, so each of
those calls first takes a turn here, from a line per budget (a channel's posts, the
workspace's edits) served by priority, then in order of arrival: a person's click goes
first, then news (a new incident, a resolution, an analysis), then notes about deliveries,
and repeat counters last.

A budget lets a few turns out of its line at once (its burst), and a token bucket spaces
the calls made with them as they are made. Pacing the calls rather than the turns matters
because the time between a turn and its call (reading the store, rendering the message)
varies under load: turns handed out at the right rate could still reach Slack bunched.
Letting only a few turns out at once keeps the line, where priority decides, in front of
everything but those few; a person's click is let out at once, and its call goes next.

Waiting requests are cheap to drop because every incident message is rendered from the
store when its turn comes, never from the event that asked for it. A request for an incident
with `coalesce` (a catch-up, which needs no answer of its own) is served by a request of the
same incident already waiting, and a waiting catch-up gives way to any newer request of its
incident, which takes its place in line. So however long the line, it holds at most one
catch-up per incident, never a backlog of stale counters.

slack_sdk's rate-limit retry handler stays behind the pacer as a safety net (a replica or
another process on the same token, a workspace with lower limits), not as the pace.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

POST = "chat.postMessage"
UPDATE = "chat.update"
# Slack publishes no burst size, only that short bursts are allowed: a few calls at once,
# then the published rate.
POST_BURST = 3
UPDATE_BURST = 5
_EPSILON = 1e-9  # a token refilled to 0.9999999999 by float arithmetic is a whole token


class Priority(IntEnum):
    """Who is served first within one budget; a lower value goes first."""

    USER = 0
    """A person clicked or asked, and is looking at Slack."""
    CHANGE = 1
    """News: a new incident's post, a resolution, a reopen, an analysis, a reminder."""
    NOTE = 2
    """What was sent where, told in the incident's thread."""
    REPEAT = 3
    """Occurrence counters catching up."""


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


@dataclass(frozen=True)
class Budget:
    """What a call spends: `chat.postMessage` per channel, `chat.update` per workspace."""

    method: str
    scope: str = ""


UPDATES = Budget(UPDATE)


def posts_in(channel: str) -> Budget:
    return Budget(POST, channel)


def slack_rates(post_per_second: float, update_per_second: float) -> dict[str, Rate]:
    """The two budgets Slack publishes, at the given rates (the settings `SLACK_POST_RATE`
    and `SLACK_UPDATE_RATE`) with the pacer's bursts."""
    return {
        POST: Rate(post_per_second, POST_BURST),
        UPDATE: Rate(update_per_second, UPDATE_BURST),
    }


class NoTurn(Exception):
    """The bot is stopping and the call's turn did not come within the stop's grace."""


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the pacer needs of the event loop: its time, and a timer. Tests pass a clock
    they move by hand, so that nothing in them waits on real time."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Cancellable: ...


class _Bucket:
    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.tokens = float(rate.burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.rate.burst), self.tokens + elapsed * self.rate.per_second)
        self.updated = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens < 1 - _EPSILON:
            return False
        self.tokens = max(0.0, self.tokens - 1)
        return True

    def give_back(self, now: float) -> None:
        self._refill(now)
        self.tokens = min(float(self.rate.burst), self.tokens + 1)

    def ready_at(self, now: float) -> float:
        self._refill(now)
        return now + max(0.0, (1 - self.tokens) / self.rate.per_second)


class _Lane:
    """One budget: how many of its turns are out (granted, their calls not gone yet), the
    bucket that spaces its calls, and the calls waiting for a token, best first."""

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.out = 0
        self.calls = _Bucket(rate, now)
        self.callers: list[tuple[Ticket, asyncio.Future[None]]] = []


class Ticket:
    """One request for a turn. `wait()` says whether it got one, `spend()` waits until the
    call may go, and a turn that ends up unused (the sync found nothing to send) goes back
    with `release()`."""

    def __init__(
        self,
        pacer: Pacer,
        budget: Budget,
        priority: Priority,
        key: str | None,
        coalesce: bool,
        seq: int,
    ) -> None:
        self.budget = budget
        self.priority = priority
        self.key = key
        self.coalesce = coalesce
        self.seq = seq
        self.spent = False
        self._pacer = pacer
        self._future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def granted(self) -> bool:
        return self.done and not self._future.cancelled() and self._future.result()

    async def wait(self) -> bool:
        """True once it is this request's turn; False when another request of its incident
        serves for it, or the bot is stopping and its turn did not come in time."""
        try:
            return await self._future
        except asyncio.CancelledError:
            self._pacer._withdraw(self)
            raise

    async def spend(self, budget: Budget) -> bool:
        """Spend the granted turn on a call against `budget`, returning when the call may
        go; False when it is spent already or was for another budget (the incident's state
        changed while it waited)."""
        if not self.granted or self.spent or budget != self.budget:
            return False
        self.spent = True
        await self._pacer._call(self)
        return True

    def release(self) -> None:
        """Give an unspent turn back, so that a sync that sent nothing costs nothing."""
        if self.granted and not self.spent:
            self.spent = True
            self._pacer._turn_back(self.budget)

    def _finish(self, granted: bool) -> None:
        if not self._future.done():
            self._future.set_result(granted)


class Pacer:
    """Turns for Slack calls, at most `rates[method]` of them; a method without a rate is
    not paced. Everything happens on the event loop, so no lock is needed."""

    def __init__(self, rates: Mapping[str, Rate], clock: Clock | None = None) -> None:
        self.rates = dict(rates)
        self._clock = clock
        self._lanes: dict[Budget, _Lane] = {}
        self._waiting: list[Ticket] = []
        self._seq = itertools.count()
        self._timer: Cancellable | None = None
        self._deadline: float | None = None

    @property
    def waiting(self) -> int:
        """Requests waiting in line, in every budget."""
        return len(self._waiting)

    def request(
        self,
        budget: Budget,
        priority: Priority,
        *,
        key: str | None = None,
        coalesce: bool = False,
    ) -> Ticket:
        """Ask for a turn, at once: granted now when the budget has a turn free, else in line.

        `key` names what the call renders (an incident). With `coalesce`, a request of the
        same key already in line serves for this one (taking the higher priority of the
        two), and this one is finished ungranted at once; a `coalesce` request in line is
        finished ungranted when any newer request of its key arrives, the newcomer taking
        its place in line if that is earlier."""
        ticket = Ticket(self, budget, priority, key, coalesce, next(self._seq))
        same_key = [t for t in self._waiting if key is not None and t.key == key]
        if coalesce and same_key:
            served_by = min(same_key, key=_order)
            served_by.priority = min(served_by.priority, priority)
            ticket._finish(False)
            return ticket
        for superseded in (t for t in same_key if t.coalesce):
            self._waiting.remove(superseded)
            superseded._finish(False)
            ticket.seq = min(ticket.seq, superseded.seq)
            ticket.priority = min(ticket.priority, superseded.priority)
        self._waiting.append(ticket)
        self._dispatch()
        return ticket

    async def turn(self, budget: Budget, priority: Priority) -> None:
        """Wait until one call that must be made (a thread note, a person's reply) may go;
        `NoTurn` when the bot is stopping and its turn did not come in time."""
        ticket = self.request(budget, priority)
        if not await ticket.wait():
            raise NoTurn(f"the bot is stopping: no turn left for {budget.method} {budget.scope}")
        await ticket.spend(budget)

    def stop(self, grace: float) -> None:
        """From now on, a catch-up that cannot go at once is dropped (the store keeps what it
        would have shown, and the resync of a running replica, or of the next start, shows
        it), and anything still in line after `grace` seconds is dropped too, so that a
        stop in the middle of a storm fits in the platform's grace period. Only the first
        call counts."""
        if self._deadline is None:
            self._deadline = self._now() + grace
            self._dispatch()

    def _dispatch(self) -> None:
        """Let out of each line the turns its budget allows, best first; let go the calls
        its tokens allow, best first; and set the timer for the next token."""
        clock = self._clock_now()
        now = clock.time()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for ticket in sorted(self._waiting, key=_order):
            lane = self._lane(ticket.budget, now)
            if ticket.done:  # its waiter was cancelled, and is on its way out
                self._waiting.remove(ticket)
            elif lane is None:
                self._waiting.remove(ticket)
                ticket._finish(True)
            elif lane.out < lane.rate.burst or ticket.priority is Priority.USER:
                self._waiting.remove(ticket)
                lane.out += 1
                ticket._finish(True)
        wake: float | None = None
        for lane in self._lanes.values():
            lane.callers = [(t, caller) for t, caller in lane.callers if not caller.done()]
            lane.callers.sort(key=lambda waiting: _order(waiting[0]))
            while lane.callers and lane.calls.take(now):
                lane.callers.pop(0)[1].set_result(None)
            if lane.callers:
                ready = lane.calls.ready_at(now)
                wake = ready if wake is None else min(wake, ready)
        if self._deadline is not None:
            for ticket in list(self._waiting):
                if ticket.coalesce or now >= self._deadline:
                    self._waiting.remove(ticket)
                    ticket._finish(False)
            if self._waiting:
                wake = self._deadline if wake is None else min(wake, self._deadline)
        if wake is not None:
            self._timer = clock.call_at(wake, self._dispatch)

    async def _call(self, ticket: Ticket) -> None:
        """Wait until the call of a granted turn may go: at once within the burst, else when
        a token comes, the best caller first. Its turn is back in the budget then."""
        now = self._now()
        lane = self._lane(ticket.budget, now)
        if lane is None:
            return
        try:
            if lane.callers or not lane.calls.take(now):
                caller: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                lane.callers.append((ticket, caller))
                self._dispatch()
                try:
                    await caller
                except asyncio.CancelledError:
                    if caller.done() and not caller.cancelled():
                        lane.calls.give_back(self._now())  # its token, unused
                    raise
        finally:
            self._turn_back(ticket.budget)

    def _lane(self, budget: Budget, now: float) -> _Lane | None:
        rate = self.rates.get(budget.method)
        if rate is None:
            return None
        lane = self._lanes.get(budget)
        if lane is None:
            lane = self._lanes[budget] = _Lane(rate, now)
        return lane

    def _turn_back(self, budget: Budget) -> None:
        lane = self._lanes.get(budget)
        if lane is not None:
            lane.out -= 1
            self._dispatch()

    def _withdraw(self, ticket: Ticket) -> None:
        """A waiter was cancelled (a shutdown): out of the line, or its turn back if it had
        just been granted one."""
        if ticket in self._waiting:
            self._waiting.remove(ticket)
            self._dispatch()
        else:
            ticket.release()

    def _clock_now(self) -> Clock:
        return self._clock if self._clock is not None else asyncio.get_running_loop()

    def _now(self) -> float:
        return self._clock_now().time()


def _order(ticket: Ticket) -> tuple[int, int]:
    return (ticket.priority, ticket.seq)
