"""One Slack message per incident, kept in step with the store.

The message is always rendered from the store's current state (the incident, its latest
analysis, its silence), never from the event that triggered the update, so any update can be
repeated or skipped without harm: a storm of repeats becomes one `chat.update` per interval,
and whatever Slack refused is simply synced again by the resync loop once Slack is back.

Several replicas share the work through leases in the store (`incidents.leases`): one sync of
an incident at a time across all of them (so one root post), one coalesced update per interval
across all of them, and one resync pass per interval. A replica killed between posting and
recording its post leaves an expired lease; whoever takes it over looks for the post in the
channel (by the incident id in the message's metadata) before posting again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from analysis.models import Analysis
from analysis.runbooks import Runbooks
from blocks.incident import render_incident
from blocks.kit import Message
from blocks.thread import continuation, reanalyzed_note, reopened_note, resolved_note
from bot.settings import Settings
from bot.throttle import Throttle
from incidents.leases import Leases
from incidents.lifecycle import IncidentService, OutcomeKind, RecordOutcome
from incidents.models import Incident, IncidentStatus, MessageRef
from incidents.store import LeaseGrant
from notify.outbox import DeliveryError

logger = logging.getLogger(__name__)

T = TypeVar("T")
_GRACE = timedelta(seconds=1)
METADATA_EVENT = "incident_posted"
_HISTORY_SEARCHED = 200  # recent top-level messages searched for a post a dead replica made
# SlackClientError covers SlackApiError (Slack said no) and SlackRequestError (a files
# upload's second step refused); the others are the network.
_SLACK_FAILURES = (SlackClientError, aiohttp.ClientError, TimeoutError)
# Refusals that trying again will not change; anything else (an outage, a 429) may pass later.
_PERMANENT_ERRORS = ("channel_not_found", "is_archived", "invalid_blocks", "msg_too_long")
_EXPLAINED = {
    "channel_not_found": "the channel does not exist or the bot cannot see it: check SLACK_CHANNEL",
    "not_in_channel": "the bot is not in the channel: invite it with /invite @incident-responder",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid",
    "account_inactive": "the Slack app was uninstalled or its token revoked",
    "missing_scope": "the Slack app lacks a scope: reinstall it from slack-app-manifest.yaml",
}


class SlackPublisher:
    def __init__(
        self,
        client: AsyncWebClient,
        service: IncidentService,
        settings: Settings,
        leases: Leases,
        executor: Executor | None = None,
        runbooks: Runbooks | None = None,
    ) -> None:
        self.client = client
        self.runbooks = runbooks or Runbooks()
        self.service = service
        self.store = service.store
        self.settings = settings
        self.leases = leases
        self._executor = executor
        self._updates: Throttle[Incident] = Throttle(
            settings.update_interval.total_seconds(), self._throttled_sync
        )
        # One lock per incident, with how many syncs hold or await it: forgotten only when
        # none does, so two syncs of one incident can never run at once and post twice.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._analyzing: set[str] = set()
        # How long a sync waits for another replica's lease on the incident: past a lease's
        # life, so that a replica that died with it is taken over; nothing once stopping.
        self._lease_wait = leases.duration + _GRACE

    async def publish(self, outcome: RecordOutcome) -> None:
        """React to what an alert did; the message itself is rendered by `sync`. The silence
        is read here only before a thread note: a storm's repeats go to the coalesced update,
        which reads it once per interval (`_throttled_sync`) rather than once per write."""
        incident = outcome.incident
        if incident is None or outcome.kind is OutcomeKind.DUPLICATE:
            return
        if outcome.kind in (OutcomeKind.OPENED, OutcomeKind.REOPENED):
            self._analyzing.add(incident.id)
        if outcome.kind in (OutcomeKind.REOPENED, OutcomeKind.RESOLVED):
            if await self._muted(incident):
                return
            if outcome.kind is OutcomeKind.REOPENED:
                await self.thread_note(incident.id, reopened_note(incident))
            else:
                await self.thread_note(incident.id, resolved_note(incident))
        await self._updates.offer(incident.id, incident)

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
        for part in continuation(incident, overflow):
            await self.thread_note(incident.id, part)
        if reanalyzed_by is not None:
            await self.thread_note(incident.id, reanalyzed_note(analysis, reanalyzed_by))

    async def publish_analysis_failure(self, incident: Incident) -> None:
        """The analysis will not come: stop showing "Analyzing…" on the message."""
        self._analyzing.discard(incident.id)
        await self.sync(incident.id)

    async def sync(self, incident_id: str, *, shown_by_user: bool = False) -> list[str]:
        """Post the incident's message, or update it to the incident's current state.

        A silenced incident is left as it is unless a person acted on it (`shown_by_user`).
        Returns the analysis text that did not fit the message. A Slack failure is logged
        and leaves the message pending: the resync loop will try again."""
        lock, users = self._locks.get(incident_id, (asyncio.Lock(), 0))
        self._locks[incident_id] = (lock, users + 1)
        try:
            async with (
                lock,
                self.leases.holding(f"slack:{incident_id}", wait=self._lease_wait) as grant,
            ):
                if not grant.granted:
                    logger.warning("message of %s left to the replica that holds it", incident_id)
                    return []
                return await self._sync(
                    incident_id, shown_by_user, taken_over=grant is LeaseGrant.TAKEN_OVER
                )
        except _SLACK_FAILURES as exc:
            logger.warning(
                "Slack message of %s left pending for retry: %s",
                incident_id,
                explain_slack_error(exc),
            )
            return []
        finally:
            lock, users = self._locks[incident_id]
            if users == 1:
                del self._locks[incident_id]
            else:
                self._locks[incident_id] = (lock, users - 1)

    async def _sync(self, incident_id: str, shown_by_user: bool, *, taken_over: bool) -> list[str]:
        incident = await self._store(self.store.get_incident, incident_id)
        if incident is None:
            return []
        ref = await self._store(self.store.message_ref, incident_id)
        silenced_until = await self._store(self.service.silenced_until, incident.fingerprint)
        if silenced_until and not shown_by_user:
            return []
        if ref is None and incident.status is IncidentStatus.RESOLVED:
            return []
        record = await self._store(self.store.latest_analysis, incident_id)
        analysis = Analysis.model_validate_json(record.body) if record else None
        latest = await self._store(self.store.occurrences, incident_id, 1)
        ticket = await self._store(self.store.ticket, incident_id)
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
        channel = self.settings.channel_for(incident.severity)
        if ref is None and taken_over:
            ref = await self._find_post(incident, channel)
        if ref is None:
            if await self.leases.acquire(f"slack:{incident_id}") is not LeaseGrant.ACQUIRED:
                logger.warning("lost the lease on %s before posting it; not posting", incident_id)
                return []
            response = await self.client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                metadata=_post_metadata(incident_id),
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
                await self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, text=message.text, blocks=message.blocks
                )
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise
                logger.warning("message of %s was deleted in Slack; posting it anew", incident_id)
                response = await self.client.chat_postMessage(
                    channel=ref.channel,
                    text=message.text,
                    blocks=message.blocks,
                    metadata=_post_metadata(incident_id),
                    unfurl_links=False,
                    unfurl_media=False,
                )
                ref = ref.model_copy(update={"ts": str(response["ts"])})
            ref = ref.model_copy(update={"synced_version": incident.version})
        await self._store(self.store.put_message_ref, ref)
        return message.overflow

    async def _find_post(self, incident: Incident, channel: str) -> MessageRef | None:
        """The incident's message, if a replica that died before recording it had posted it:
        Slack has no idempotent post, so the channel's recent history is the only witness."""
        history = await self.client.conversations_history(
            channel=channel, limit=_HISTORY_SEARCHED, include_all_metadata=True
        )
        for found in history.get("messages") or []:
            metadata = found.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == METADATA_EVENT
                and payload.get("incident_id") == incident.id
            ):
                logger.warning("%s was already posted by a replica that stopped", incident.id)
                return MessageRef(
                    incident_id=incident.id, channel=channel, ts=str(found["ts"]), synced_version=0
                )
        return None

    async def _throttled_sync(self, incident: Incident) -> None:
        """A coalesced update, at most one per interval across replicas: a replica that finds
        another's update this interval tries again at the end of its own, and then only if
        the message is still behind the incident. The first post takes the interval's lease
        too, so that a repeat on another replica does not update it at once. A silenced
        incident is left as it is, for the price of one read."""
        if await self._muted(incident):
            return
        incident_id = incident.id
        ref = await self._store(self.store.message_ref, incident_id)
        if ref is not None:
            current = await self._store(self.store.get_incident, incident_id)
            if current is None or ref.synced_version >= current.version:
                return
        interval = self.settings.update_interval
        granted = (await self.leases.acquire(f"slack-update:{incident_id}", interval)).granted
        if not granted:
            await self._updates.offer(incident_id, incident)
            return
        await self.sync(incident_id)

    async def permalink(self, incident_id: str) -> str | None:
        """The link to the incident's message, for tickets, mails, pages and cards; None
        while it is unposted or Slack will not say, since a notification without the link
        beats no notification."""
        ref = await self._store(self.store.message_ref, incident_id)
        if ref is None:
            return None
        try:
            answer = await self.client.chat_getPermalink(channel=ref.channel, message_ts=ref.ts)
        except _SLACK_FAILURES as exc:
            logger.warning("no permalink for %s: %s", incident_id, explain_slack_error(exc))
            return None
        return str(answer.get("permalink") or "") or None

    async def thread_note(self, incident_id: str, message: Message) -> None:
        """A reply under the incident's message; skipped while the message itself is pending."""
        ref = await self._store(self.store.message_ref, incident_id)
        if ref is None:
            return
        try:
            await self.client.chat_postMessage(
                channel=ref.channel,
                thread_ts=ref.ts,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except _SLACK_FAILURES as exc:
            logger.warning(
                "thread note on %s not delivered: %s", incident_id, explain_slack_error(exc)
            )

    async def post_in_thread(self, incident_id: str, message: Message) -> str:
        """A reply under the incident's message that must not be lost (a reminder): its ts,
        or `DeliveryError` for the outbox to retry while Slack or the message is not there."""
        ref = await self._store(self.store.message_ref, incident_id)
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
        ref = await self._store(self.store.message_ref, incident_id)
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
        except _SLACK_FAILURES as exc:
            logger.warning(
                "%s of %s not uploaded: %s", filename, incident_id, explain_slack_error(exc)
            )
            return False
        return True

    async def thread_messages(self, incident_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The incident's thread as Slack returns it, oldest first (the root included);
        empty while the message is unposted or Slack will not say."""
        ref = await self._store(self.store.message_ref, incident_id)
        if ref is None:
            return []
        try:
            answer = await self.client.conversations_replies(
                channel=ref.channel, ts=ref.ts, limit=limit
            )
        except _SLACK_FAILURES as exc:
            logger.warning("thread of %s unreadable: %s", incident_id, explain_slack_error(exc))
            return []
        return list(answer.get("messages") or [])

    async def _post(self, channel: str, message: Message, thread_ts: str | None = None) -> str:
        try:
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
                explain_slack_error(exc), retryable=error not in _PERMANENT_ERRORS
            ) from exc
        except _SLACK_FAILURES as exc:
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
        now = datetime.now(UTC)
        for incident in await self._store(self.store.unsynced_incidents, now, 100):
            await self.sync(incident.id)

    def stopping(self) -> None:
        """From now on, sync without waiting on another replica's lease: that replica is
        syncing the incident now, and whatever it misses the resync loop (of a replica still
        running, or of this one's next start) repairs. Waiting would chain one lease per
        incident into a stop longer than the platform's grace period."""
        self._lease_wait = timedelta(0)

    async def close(self) -> None:
        """Flush the coalesced updates, as `stopping` says."""
        self.stopping()
        await self._updates.flush()

    async def _muted(self, incident: Incident) -> bool:
        return await self._store(self.service.silenced_until, incident.fingerprint) is not None

    async def _store(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)


def _post_metadata(incident_id: str) -> dict[str, Any]:
    """Slack message metadata naming the incident: what `_find_post` recognises a post by."""
    return {"event_type": METADATA_EVENT, "event_payload": {"incident_id": incident_id}}


def explain_slack_error(exc: BaseException) -> str:
    """Slack's error code with what to do about it, for a log line an operator can act on."""
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown_error"))
        return f"{error}: {_EXPLAINED.get(error, 'Slack refused the call')}"
    return f"{type(exc).__name__}: {exc}"
