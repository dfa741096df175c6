"""One Slack message per incident, kept in step with the store.

The message is always rendered from the store's current state (the incident, its latest
analysis, its silence), never from the event that triggered the update, so any update can be
repeated or skipped without harm: a storm of repeats becomes one `chat.update` per interval,
and whatever Slack refused is simply synced again by the resync loop once Slack is back.

Every post and edit takes its turn from the pacer (`bot.slack_pacing`), at Slack's published
rates, and `publish` hands its work to background tasks, so that neither the receiver nor
the SQS consumer ever waits for Slack's pace. A sync renders the message once its turn has
come, so the message is as fresh as the turn, and a repeat-counter sync waiting for its
turn serves for every later one of its incident.

Several replicas share the work through leases in the store (`incidents.leases`): one sync of
an incident at a time across all of them (so one root post), one coalesced update per interval
across all of them, and one resync pass per interval. A replica killed between posting and
recording its post leaves an expired lease; whoever takes it over looks for the post in the
channel (by the incident id in the message's metadata) before posting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from analysis.models import Analysis
from analysis.runbooks import Runbooks
from blocks.incident import render_incident
from blocks.kit import Message
from blocks.thread import analysis_posts, reanalyzed_note, reopened_note, resolved_note
from bot.settings import Settings
from bot.slack_errors import PERMANENT_ERRORS, SLACK_FAILURES, explain_slack_error
from bot.slack_pacing import (
    POST,
    UPDATES,
    Budget,
    Pacer,
    Priority,
    Ticket,
    posts_in,
    slack_rates,
)
from bot.slack_posts import find_post, permalink_of, post_metadata
from bot.throttle import Throttle
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, OutcomeKind, RecordOutcome
from incidents.models import Incident, IncidentStatus, MessageRef
from incidents.offload import Offload
from incidents.store import (
    AnalysisStore,
    ChatRefStore,
    IncidentStore,
    LeaseGrant,
    TicketStore,
)
from notify.outbox import DeliveryError

logger = logging.getLogger(__name__)

_GRACE = timedelta(seconds=1)
# How long a notification waits for the link to a new incident's message while its post is
# queued behind a storm: a page is worth more on time than with its link.
_LINK_WAIT = 5.0
# How long, once stopping, posts and edits keep their turns: inside the 8 s a stop gives its
# updates and analyses (bot.app.STOP_WITHIN), so that a stop ends within 10 s.
_STOP_PACING = 6.0
_REPEATS = (OutcomeKind.REPEATED, OutcomeKind.MEMBER_RESOLVED)


@dataclass
class _Work:
    """What this replica is doing about one incident's message: the lock that keeps its
    syncs one at a time, and how many syncs (or new incidents' first posts) are under way."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Plan:
    """What a sync found in the store, and so which call it will make."""

    incident: Incident
    ref: MessageRef | None
    silenced_until: datetime | None
    channel: str

    @property
    def budget(self) -> Budget:
        return UPDATES if self.ref is not None else posts_in(self.channel)


class PublisherStore(IncidentStore, ChatRefStore, AnalysisStore, TicketStore, Protocol):
    """What a message shows (the incident, its newest alert, analysis and ticket) and where
    each incident's message is."""


class SlackPublisher:
    def __init__(
        self,
        client: AsyncWebClient,
        service: IncidentService,
        settings: Settings,
        leases: Leases,
        executor: Executor | None = None,
        runbooks: Runbooks | None = None,
        pacer: Pacer | None = None,
        *,
        store: PublisherStore,
    ) -> None:
        """`pacer` defaults to one at `SLACK_POST_RATE` and `SLACK_UPDATE_RATE`; `store` is
        where the messages' refs are kept and what a message shows is read."""
        self.client = client
        self.pacer = pacer or Pacer(
            slack_rates(settings.slack_post_rate, settings.slack_update_rate)
        )
        self.runbooks = runbooks or Runbooks()
        self.service = service
        self.store = store
        self.settings = settings
        self.leases = leases
        self._offload = Offload(executor)
        self._updates: Throttle[Incident] = Throttle(
            settings.update_interval.total_seconds(), self._throttled_sync
        )
        # Per incident, forgotten only when no sync uses it, so that two syncs of one
        # incident never run at once and post twice.
        self._work: dict[str, _Work] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._analyzing: set[str] = set()
        # Incidents with a repeat's reaction on its way: one at a time, so that a storm's
        # repeats spawn one task per incident rather than one per alert.
        self._repeating: set[str] = set()
        # How long a sync waits for another replica's lease on the incident: past a lease's
        # life, so that a replica that died with it is taken over; nothing once stopping.
        self._lease_wait = leases.duration + _GRACE

    async def publish(self, outcome: RecordOutcome) -> None:
        """React to what an alert did, in the background: whoever recorded the alert goes on
        at once, whatever Slack's pace. The message itself is rendered by `sync`.

        A new incident's post is under way from this call on: its thread replies (a graph,
        "PagerDuty paged") and its link wait for it rather than find no message. The silence
        is read only before news: a storm's repeats go to the coalesced update, which reads
        it once per interval."""
        incident = outcome.incident
        if incident is None or outcome.kind is OutcomeKind.DUPLICATE:
            return
        if outcome.kind in (OutcomeKind.OPENED, OutcomeKind.REOPENED):
            self._analyzing.add(incident.id)
        if outcome.kind is OutcomeKind.OPENED:
            self._enter(incident.id)
        if outcome.kind in _REPEATS:
            if incident.id in self._repeating:
                return  # the repeat on its way offers the incident's newest state anyway
            self._repeating.add(incident.id)
        self._spawn(self._react(outcome.kind, incident))

    async def _react(self, kind: OutcomeKind, incident: Incident) -> None:
        """A repeat waits for its incident's next coalesced update; a resolution or a reopen
        is news, sent now (superseding the coalesced update) with its note in the thread."""
        self._repeating.discard(incident.id)
        try:
            if kind in (OutcomeKind.REOPENED, OutcomeKind.RESOLVED):
                if await self._muted(incident):
                    return
                self._updates.discard(incident.id)
                note = reopened_note if kind is OutcomeKind.REOPENED else resolved_note
                self._spawn(self.thread_note(incident.id, note(incident)))
                await self.sync(incident.id, coalesce=True)
            else:
                await self._updates.offer(incident.id, incident)
        finally:
            if kind is OutcomeKind.OPENED:
                self._leave(incident.id)

    async def publish_analysis(
        self, incident: Incident, analysis: Analysis, *, reanalyzed_by: str | None = None
    ) -> None:
        """Show a finished analysis at once, and continue in the thread what did not fit.
        A re-analysis someone asked for shows even on a silenced incident."""
        self._analyzing.discard(incident.id)
        asked = reanalyzed_by is not None
        if not asked and await self._muted(incident):
            return
        overflow = await self.sync(incident.id, shown_by_user=asked)
        priority = Priority.USER if asked else Priority.CHANGE
        for part in analysis_posts(incident, analysis, overflow):
            await self.thread_note(incident.id, part, priority)
        if reanalyzed_by is not None:
            await self.thread_note(
                incident.id, reanalyzed_note(analysis, reanalyzed_by), Priority.USER
            )

    async def publish_analysis_failure(self, incident: Incident) -> None:
        """The analysis will not come: stop showing "Analyzing…" on the message."""
        self._analyzing.discard(incident.id)
        await self.sync(incident.id, coalesce=True)

    async def sync(
        self,
        incident_id: str,
        *,
        shown_by_user: bool = False,
        priority: Priority = Priority.CHANGE,
        coalesce: bool = False,
    ) -> list[str]:
        """Post the incident's message, or update it to the incident's current state.

        A silenced incident is left as it is unless a person acted on it (`shown_by_user`,
        which also puts the sync first in line). The sync waits for its turn at `priority`;
        a new incident's post goes at least as news. With `coalesce` (a catch-up that needs
        no answer of its own) a sync of the incident already waiting serves for it.
        Returns the analysis text that did not fit the message. A Slack failure is logged
        and leaves the message pending: the resync loop will try again."""
        if shown_by_user:
            priority = Priority.USER
        with self._working(incident_id) as work:
            try:
                # Under the lock, so that a sync sending now (a post not recorded yet) has
                # finished, and the plan sees what it did.
                async with work.lock:
                    plan = await self._plan(incident_id, shown_by_user)
                if plan is None:
                    return []
                if plan.budget.method == POST:
                    priority = min(priority, Priority.CHANGE)
                turn = self.pacer.request(plan.budget, priority, key=incident_id, coalesce=coalesce)
                if not await turn.wait():
                    return []
                try:
                    return await self._sync_in_turn(incident_id, shown_by_user, work, turn)
                finally:
                    turn.release()
            except SLACK_FAILURES as exc:
                logger.warning(
                    "Slack message of %s left pending for retry: %s",
                    incident_id,
                    explain_slack_error(exc),
                )
                return []

    async def _sync_in_turn(
        self, incident_id: str, shown_by_user: bool, work: _Work, turn: Ticket
    ) -> list[str]:
        lease = self.leases.holding(f"slack:{incident_id}", wait=self._lease_wait)
        async with work.lock, lease as grant:
            if not grant.granted:
                logger.warning("message of %s left to the replica that holds it", incident_id)
                return []
            taken_over = grant is LeaseGrant.TAKEN_OVER
            return await self._sync(incident_id, shown_by_user, turn, taken_over=taken_over)

    async def _plan(
        self, incident_id: str, shown_by_user: bool, *, post_resolved: bool = False
    ) -> _Plan | None:
        """The incident as the store has it now; None when its message is to be left as it
        is: a silenced incident nobody acted on, or one resolved before it was ever posted
        (after an outage, a finished incident would only be noise), unless `post_resolved`:
        its post was asked for while it was open, and waited for its turn."""
        incident = await self._offload(self.store.get_incident, incident_id)
        if incident is None:
            return None
        ref = await self._offload(self.store.message_ref, incident_id)
        silenced_until = await self._offload(self.service.silenced_until, incident.fingerprint)
        if silenced_until and not shown_by_user:
            return None
        if ref is None and incident.status is IncidentStatus.RESOLVED and not post_resolved:
            return None
        channel = self.settings.channel_for(incident.severity)
        return _Plan(incident, ref, silenced_until, channel)

    async def _sync(
        self, incident_id: str, shown_by_user: bool, turn: Ticket, *, taken_over: bool
    ) -> list[str]:
        plan = await self._plan(
            incident_id, shown_by_user, post_resolved=turn.budget.method == POST
        )
        if plan is None:
            return []
        incident, ref, silenced_until = plan.incident, plan.ref, plan.silenced_until
        if (
            ref is not None
            and turn.priority is Priority.REPEAT
            and ref.synced_version >= incident.version
        ):
            return []  # a catch-up whose work another sync did while it waited
        record = await self._offload(self.store.latest_analysis, incident_id)
        analysis = Analysis.model_validate_json(record.body) if record else None
        latest = await self._offload(self.store.occurrences, incident_id, 1)
        ticket = await self._offload(self.store.ticket, incident_id)
        runbook = self.runbooks.find(latest[0].alert) if latest else None
        message = render_incident(
            incident,
            analysis,
            jira_enabled=self.settings.jira_enabled,
            email_enabled=self.settings.email_enabled,
            silenced_until=silenced_until,
            analyzing=analysis is None and incident.id in self._analyzing,
            alert_message=latest[0].alert.message if latest else None,
            jira_link=(ticket.key, ticket.url) if ticket and ticket.key and ticket.url else None,
            runbook=(runbook.name, runbook.url) if runbook else None,
        )
        channel = plan.channel
        if ref is None and taken_over:
            ref = await find_post(self.client, incident.id, channel)
        if ref is None:
            if await self.leases.acquire(f"slack:{incident_id}") is not LeaseGrant.ACQUIRED:
                logger.warning("lost the lease on %s before posting it; not posting", incident_id)
                return []
            await self._turn(turn, posts_in(channel))
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                metadata=post_metadata(incident_id),
                unfurl_links=False,
                unfurl_media=False,
            )
            ref = MessageRef(
                incident_id=incident_id,
                channel=str(response["channel"]),
                ts=str(response["ts"]),
                synced_version=incident.version,
            )
        else:
            try:
                await self._turn(turn, UPDATES)
                await self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, text=message.text, blocks=message.blocks
                )
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise
                logger.warning("message of %s was deleted in Slack; posting it anew", incident_id)
                await self._turn(turn, posts_in(ref.channel))
                response = await self.client.chat_postMessage(
                    channel=ref.channel,
                    text=message.text,
                    blocks=message.blocks,
                    metadata=post_metadata(incident_id),
                    unfurl_links=False,
                    unfurl_media=False,
                )
                ref = ref.model_copy(update={"ts": str(response["ts"])})
            ref = ref.model_copy(update={"synced_version": incident.version})
        await self._offload(self.store.put_message_ref, ref)
        return message.overflow

    async def _turn(self, turn: Ticket, budget: Budget) -> None:
        """The turn for the sync's next call: the one it waited for, unless that is spent or
        was for another call (another replica posted the message while it waited); then a
        new one, at the same priority."""
        if not await turn.spend(budget):
            await self.pacer.turn(budget, turn.priority)

    async def _throttled_sync(self, incident: Incident) -> None:
        """A coalesced update, at most one per interval across replicas: a replica that finds
        another's update this interval tries again at the end of its own, and then only if
        the message is still behind the incident. The first post takes the interval's lease
        too, so that a repeat on another replica does not update it at once. A silenced
        incident is left as it is, for the price of one read."""
        if await self._muted(incident):
            return
        incident_id = incident.id
        ref = await self._offload(self.store.message_ref, incident_id)
        if ref is not None:
            current = await self._offload(self.store.get_incident, incident_id)
            if current is None or ref.synced_version >= current.version:
                return
        interval = self.settings.update_interval
        granted = (await self.leases.acquire(f"slack-update:{incident_id}", interval)).granted
        if not granted:
            await self._updates.offer(incident_id, incident)
            return
        await self.sync(incident_id, priority=Priority.REPEAT, coalesce=True)

    async def permalink(self, incident_id: str) -> str | None:
        """The link to the incident's message, for tickets, mails, pages and cards; None
        while it is unposted or Slack will not say, since a notification without the link
        beats no notification (or a late one: a post queued behind a storm is waited for
        `_LINK_WAIT` at most)."""
        ref = await self._message_ref(incident_id, wait=_LINK_WAIT)
        return await permalink_of(self.client, ref) if ref is not None else None

    async def thread_note(
        self, incident_id: str, message: Message, priority: Priority = Priority.CHANGE
    ) -> None:
        """A reply under the incident's message, once the message is there; skipped while
        the message is pending (Slack refused it)."""
        ref = await self._message_ref(incident_id)
        if ref is None:
            return
        try:
            await self.pacer.turn(posts_in(ref.channel), priority)
            await self.client.chat_postMessage(
                channel=ref.channel,
                thread_ts=ref.ts,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SLACK_FAILURES as exc:
            logger.warning(
                "thread note on %s not delivered: %s", incident_id, explain_slack_error(exc)
            )

    async def post_in_thread(self, incident_id: str, message: Message) -> str:
        """A reply under the incident's message that must not be lost (a reminder): its ts,
        or `DeliveryError` for the outbox to retry while Slack or the message is not there."""
        ref = await self._message_ref(incident_id)
        if ref is None:
            raise DeliveryError(f"the message of {incident_id} is not posted yet")
        return await self._post(ref.channel, message, thread_ts=ref.ts)

    async def post_to_channel(self, message: Message) -> str:
        """A message of the bot's own in `SLACK_CHANNEL` (the daily digest): its ts, or
        `DeliveryError` for the outbox to retry."""
        return await self._post(self.settings.slack_channel or "", message)

    async def upload_to_thread(
        self, incident_id: str, filename: str, content: bytes | str, *, title: str, comment: str
    ) -> bool:
        """A file (a graph, a post-mortem draft) under the incident's message, with files
        upload v2 (getUploadURLExternal, the upload, completeUploadExternal, which slack_sdk
        chains). False, logged, while the message is unposted or Slack refuses."""
        ref = await self._message_ref(incident_id)
        if ref is None:
            logger.warning(
                "%s of %s not uploaded: its message is not posted", filename, incident_id
            )
            return False
        try:
            await self.client.files_upload_v2(
                channel=ref.channel,
                thread_ts=ref.ts,
                filename=filename,
                content=content,
                title=title,
                initial_comment=comment,
            )
        except SLACK_FAILURES as exc:
            logger.warning(
                "%s of %s not uploaded: %s", filename, incident_id, explain_slack_error(exc)
            )
            return False
        return True

    async def thread_messages(self, incident_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The incident's thread as Slack returns it, oldest first (the root included);
        empty while the message is unposted or Slack will not say."""
        ref = await self._message_ref(incident_id)
        if ref is None:
            return []
        try:
            answer = await self.client.conversations_replies(
                channel=ref.channel, ts=ref.ts, limit=limit
            )
        except SLACK_FAILURES as exc:
            logger.warning("thread of %s unreadable: %s", incident_id, explain_slack_error(exc))
            return []
        return list(answer.get("messages") or [])

    async def reply(self, channel: str, message: Message, *, thread_ts: str | None = None) -> None:
        """A message a person asked for (an answer in a thread, a word by direct message):
        first in line for the channel's turn, since someone is waiting for it."""
        await self.pacer.turn(posts_in(channel), Priority.USER)
        await self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=message.text,
            blocks=message.blocks or None,
            unfurl_links=False,
            unfurl_media=False,
        )

    async def _post(self, channel: str, message: Message, thread_ts: str | None = None) -> str:
        try:
            await self.pacer.turn(posts_in(channel), Priority.CHANGE)
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            raise DeliveryError(
                explain_slack_error(exc), retryable=error not in PERMANENT_ERRORS
            ) from exc
        except SLACK_FAILURES as exc:
            raise DeliveryError(explain_slack_error(exc)) from exc
        return str(response["ts"])

    async def resync_forever(self, interval: timedelta) -> None:
        """Bring every unposted or stale message up to date, again and again: after a Slack
        outage, a revoked token fixed, or a restart, no incident stays without its message.
        One replica makes each pass; the lease ends before the next, so any may make that."""
        while True:
            try:
                if (await self.leases.acquire("job:slack-resync", interval * 0.9)).granted:
                    await self.resync()
            except Exception:  # the loop is the retry: one failed pass must not end it
                logger.exception("resync pass failed; the next one follows in %s", interval)
            await asyncio.sleep(interval.total_seconds())

    async def resync(self) -> None:
        """All at once, as catch-ups: each waits for its turn in line, and one already
        waiting for an incident serves for the resync's."""
        now = datetime.now(UTC)
        async with asyncio.TaskGroup() as syncs:
            for incident in await self._offload(self.store.unsynced_incidents, now, 100):
                syncs.create_task(self.sync(incident.id, priority=Priority.REPEAT, coalesce=True))

    def stopping(self) -> None:
        """From now on, sync without waiting on another replica's lease: that replica is
        syncing the incident now, and whatever it misses the resync loop (of a replica still
        running, or of this one's next start) repairs. Waiting would chain one lease per
        incident into a stop longer than the platform's grace period. For the same reason,
        catch-ups no longer wait for a turn, and the rest wait `_STOP_PACING` at most."""
        self._lease_wait = timedelta(0)
        self.pacer.stop(_STOP_PACING)

    async def close(self) -> None:
        """Finish the reactions under way and flush the coalesced updates, as `stopping`
        says."""
        self.stopping()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._updates.flush()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The task's last stop: nothing above it would report the failure.
            logger.error("publishing to Slack failed", exc_info=task.exception())

    def _enter(self, incident_id: str) -> _Work:
        work = self._work.setdefault(incident_id, _Work())
        work.users += 1
        return work

    def _leave(self, incident_id: str) -> None:
        work = self._work[incident_id]
        work.users -= 1
        if work.users == 0:
            del self._work[incident_id]
            work.idle.set()

    @contextlib.contextmanager
    def _working(self, incident_id: str) -> Iterator[_Work]:
        work = self._enter(incident_id)
        try:
            yield work
        finally:
            self._leave(incident_id)

    async def _message_ref(self, incident_id: str, wait: float | None = None) -> MessageRef | None:
        """The incident's message; while this replica has its post under way, once that is
        done (or after `wait` seconds)."""
        ref = await self._offload(self.store.message_ref, incident_id)
        work = self._work.get(incident_id)
        if ref is None and work is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(work.idle.wait(), wait)
            ref = await self._offload(self.store.message_ref, incident_id)
        return ref

    async def _muted(self, incident: Incident) -> bool:
        return await self._offload(self.service.silenced_until, incident.fingerprint) is not None
