"""The Bolt app: buttons, the email modal, `/incident`, and follow-up questions in threads.

Every listener acks first (Slack wants it within 3 s), then does its work; Bolt's async
runner returns the ack to Slack as soon as `ack()` is awaited and lets the listener go on.
Errors the person can act on are shown to them ephemerally; anything else is logged with a
short reference that is shown to them too, never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from analysis.claude import ClaudeError
from analysis.engine import AnalysisEngine
from analysis.models import Analysis, ThreadMessage
from analysis.postmortem_document import ThreadPost
from analysis.postmortem_markdown import postmortem_filename, render_markdown
from blocks.commands import help_message, incident_detail, incident_list, stats_message
from blocks.ids import ActionId, ActionValue, BlockId, CallbackId, ModalMetadata
from blocks.incident import render_incident
from blocks.kit import Message
from blocks.modals import email_modal
from blocks.postmortem import postmortem_summary
from blocks.thread import email_outcome, followup_messages, silenced_note, ticket_note
from bot.postmortems import IncidentMissingError, PostMortems
from bot.settings import Settings, parse_duration, split_addresses
from bot.slack_pacing import Priority
from bot.slack_publisher import SlackPublisher
from bot.stats import compute_stats
from incidents.lifecycle import (
    IncidentNotFoundError,
    IncidentService,
    InvalidTransitionError,
    OutcomeKind,
)
from incidents.models import Incident, IncidentStatus, TicketRef
from ingest.pipeline import Ingestor, UnreadablePayloadError
from notify.dispatch import Notifier
from notify.jira import JiraTickets, TicketError
from notify.outbox import DeliveryError

logger = logging.getLogger(__name__)

T = TypeVar("T")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
TICKET_CLAIM_LEASE = timedelta(minutes=2)
_SILENCES = {ActionId.SILENCE_1H: timedelta(hours=1), ActionId.SILENCE_24H: timedelta(hours=24)}
FOLLOWUP_NEEDS_CLAUDE = (
    "Follow-up questions need Claude, and this bot runs with the offline analyzer "
    "(no `ANTHROPIC_API_KEY`). The analysis above is all it can say."
)


class UserFacingError(Exception):
    """Something the person who clicked or typed can understand and act on."""


@dataclass
class SlackDeps:
    settings: Settings
    service: IncidentService
    ingestor: Ingestor
    engine: AnalysisEngine
    publisher: SlackPublisher
    executor: Executor | None
    notifier: Notifier
    tickets: JiraTickets | None = None
    postmortems: PostMortems | None = None
    bot_user_id: str = ""

    async def store(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, call, *args)


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Attach every listener. Nothing runs until Socket Mode delivers an envelope."""
    handlers = _Handlers(deps)
    for action in (ActionId.ACKNOWLEDGE, ActionId.RESOLVE, ActionId.REANALYZE,
                   ActionId.SILENCE_1H, ActionId.SILENCE_24H, ActionId.CREATE_JIRA,
                   ActionId.EMAIL, ActionId.POSTMORTEM):  # fmt: skip
        app.action(action.value)(handlers.button)
    app.view(CallbackId.EMAIL.value)(handlers.email_submitted)
    app.command("/incident")(handlers.command)
    app.event("message")(handlers.message)
    app.error(handlers.error)


class _Handlers:
    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps

    async def button(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        user = body["user"]["id"]
        channel = body.get("channel", {}).get("id", "")
        try:
            try:
                incident_id = ActionValue.parse(action["value"]).incident_id
            except ValueError as exc:
                raise UserFacingError("That button does not belong to an incident.") from exc
            await self._act(ActionId(action["action_id"]), incident_id, user, body, client)
        except UserFacingError as exc:
            await _ephemeral(client, channel, user, str(exc))

    async def _act(
        self,
        action: ActionId,
        incident_id: str,
        user: str,
        body: dict[str, Any],
        client: AsyncWebClient,
    ) -> None:
        deps = self.deps
        if action is ActionId.ACKNOWLEDGE:
            await self._transition(deps.service.acknowledge, incident_id, user)
        elif action is ActionId.RESOLVE:
            await self._transition(deps.service.resolve, incident_id, user)
        elif action is ActionId.REANALYZE:
            await self.reanalyze(incident_id, user)
        elif action in _SILENCES:
            await self.silence(incident_id, _SILENCES[action], user)
        elif action is ActionId.EMAIL:
            incident = await self._incident(incident_id)
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=email_modal(incident, recipients=deps.settings.email_recipients),
            )
        elif action is ActionId.CREATE_JIRA:
            await self.create_ticket(incident_id, user)
        elif action is ActionId.POSTMORTEM:
            channel = body.get("channel", {}).get("id", "")
            await _ephemeral(client, channel, user, await self.postmortem(incident_id, user))

    async def _transition(self, change: Callable[[str, str], Incident], incident_id: str,
                          user: str) -> Incident:  # fmt: skip
        try:
            incident = await self.deps.store(change, incident_id, user)
        except IncidentNotFoundError as exc:
            raise UserFacingError(f"There is no incident {incident_id}.") from exc
        except InvalidTransitionError as exc:
            raise UserFacingError(f"Nothing done: {exc}.") from exc
        await self.deps.publisher.sync(incident_id, shown_by_user=True)
        if incident.status is IncidentStatus.ACKNOWLEDGED:
            await self.deps.notifier.acknowledged(incident, user)
        elif incident.status is IncidentStatus.RESOLVED:
            await self.deps.notifier.resolved(incident, user)
        return incident

    async def reanalyze(self, incident_id: str, user: str) -> Analysis:
        incident = await self._incident(incident_id)
        occurrences = await self.deps.store(self.deps.service.store.occurrences, incident_id, 1)
        if not occurrences:
            raise UserFacingError(f"{incident_id} has no alert left to analyze.")
        analysis = await self.deps.engine.analyze(incident, occurrences[0].alert, force=True)
        await self.deps.publisher.publish_analysis(incident, analysis, reanalyzed_by=user)
        return analysis

    async def create_ticket(self, incident_id: str, user: str) -> str:
        """One ticket per incident however many clicks: the click whose claim goes in
        creates it; every other click is told where it is, or that it is on its way.
        The ticket's key, for the one who asked."""
        deps = self.deps
        store = deps.service.store
        incident = await self._incident(incident_id)
        existing = await deps.store(store.ticket, incident_id)
        if existing and existing.key and existing.url:
            raise UserFacingError(
                f"{incident_id} already has Jira ticket <{existing.url}|{existing.key}>."
            )
        if deps.tickets is None:
            raise UserFacingError("Jira is not configured here: no ticket was created.")
        claim = TicketRef(incident_id=incident_id, claimed_by=user, claimed_at=datetime.now(UTC))
        if not await deps.store(store.claim_ticket, claim, TICKET_CLAIM_LEASE):
            raise UserFacingError(f"A Jira ticket for {incident_id} is being created right now.")
        record = await deps.store(store.latest_analysis, incident_id)
        analysis = Analysis.model_validate_json(record.body) if record else None
        timeline = await deps.store(store.timeline, incident_id)
        permalink = await deps.publisher.permalink(incident_id)
        try:
            ticket = await asyncio.to_thread(
                deps.tickets.create, incident, analysis, permalink, timeline
            )
        except TicketError as exc:
            await deps.store(store.release_ticket, claim)
            await deps.notifier.record_ticket(incident_id, user, key=None, error=exc.reason)
            raise UserFacingError(f"No Jira ticket was created: {exc.reason}") from exc
        await deps.store(
            store.put_ticket, claim.model_copy(update={"key": ticket.key, "url": ticket.url})
        )
        await deps.notifier.record_ticket(incident_id, user, key=ticket.key, error=None)
        await deps.publisher.sync(incident_id, shown_by_user=True)
        await deps.publisher.thread_note(
            incident_id, ticket_note(ticket.key, ticket.url, user), Priority.USER
        )
        return ticket.key

    async def postmortem(self, incident_id: str, user: str) -> str:
        """Draft the post-mortem from the incident, its timeline and its thread, and post it
        in the thread as a Markdown file under a short summary; what to tell the person."""
        deps = self.deps
        if deps.postmortems is None:
            raise UserFacingError("Post-mortem drafts are not available here.")
        ref = await deps.store(deps.service.store.message_ref, incident_id)
        if ref is None:
            raise UserFacingError(
                f"{incident_id} has no message to post the draft under yet; "
                f"`incident-bot postmortem {incident_id}` prints it."
            )
        # One draft at a time per incident, across replicas: a double click is one Claude call.
        async with deps.publisher.leases.holding(
            f"postmortem:{incident_id}", wait=timedelta(0)
        ) as grant:
            if not grant.granted:
                raise UserFacingError(
                    f"A post-mortem draft of {incident_id} is being written right now."
                )
            return await self._post_postmortem(incident_id, user)

    async def _post_postmortem(self, incident_id: str, user: str) -> str:
        deps = self.deps
        assert deps.postmortems is not None
        thread = [_thread_post(m) for m in await deps.publisher.thread_messages(incident_id)]
        try:
            incident, draft = await deps.postmortems.draft(incident_id, thread)
        except IncidentMissingError as exc:
            raise UserFacingError(f"There is no incident {incident_id}.") from exc
        summary = postmortem_summary(incident, draft, user)
        uploaded = await deps.publisher.upload_to_thread(
            incident_id,
            postmortem_filename(incident),
            render_markdown(draft, incident),
            title=f"Post-mortem draft: {incident.id}",
            comment=summary.text,
        )
        if uploaded:
            await deps.publisher.thread_note(incident_id, summary, Priority.USER)
        if not uploaded:
            raise UserFacingError(
                f"The post-mortem draft of {incident_id} could not be posted in its thread; "
                f"`incident-bot postmortem {incident_id}` prints it."
            )
        return f"The post-mortem draft of {incident_id} is in the incident's thread."

    async def silence(self, incident_id: str, duration: timedelta, user: str) -> None:
        try:
            silence = await self.deps.store(self.deps.service.silence, incident_id, duration, user)
        except IncidentNotFoundError as exc:
            raise UserFacingError(f"There is no incident {incident_id}.") from exc
        await self.deps.publisher.sync(incident_id, shown_by_user=True)
        await self.deps.publisher.thread_note(incident_id, silenced_note(silence), Priority.USER)

    async def _incident(self, incident_id: str) -> Incident:
        incident = await self.deps.store(self.deps.service.store.get_incident, incident_id)
        if incident is None:
            raise UserFacingError(f"There is no incident {incident_id}.")
        return incident

    async def email_submitted(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        values = view["state"]["values"]
        field = values[BlockId.EMAIL_RECIPIENTS.value][ActionId.EMAIL_RECIPIENTS.value]
        raw = field.get("value") or ""
        recipients = split_addresses(raw)
        invalid = [r for r in recipients if not _EMAIL.match(r)]
        if not recipients or invalid:
            problem = (
                f"Not an email address: {', '.join(invalid)}" if invalid else "Add a recipient"
            )
            await ack(
                response_action="errors", errors={BlockId.EMAIL_RECIPIENTS.value: problem[:150]}
            )
            return
        await ack()
        user = body["user"]["id"]
        note_field = values.get(BlockId.EMAIL_NOTE.value, {}).get(ActionId.EMAIL_NOTE.value, {})
        note = str(note_field.get("value") or "").strip()
        incident = await self._incident(ModalMetadata.parse(view["private_metadata"]).incident_id)
        try:
            delivery = await self.deps.notifier.email(incident, recipients, note, user)
        except DeliveryError as exc:
            text = f"No email about {incident.id} was sent: {exc.reason}."
        else:
            text = email_outcome(incident.id, delivery)
        # A modal has no channel: the person is told beside the incident's message, where
        # they clicked, or in a direct message while the incident has none.
        ref = await self.deps.store(self.deps.service.store.message_ref, incident.id)
        if ref is not None:
            await _ephemeral(client, ref.channel, user, text)
        else:
            await self.deps.publisher.reply(user, Message(text=text, blocks=[]))

    async def command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        words = (command.get("text") or "").strip().split(maxsplit=1)
        verb = words[0].lower() if words else "help"
        rest = words[1].strip() if len(words) > 1 else ""
        user = command["user_id"]
        try:
            await self._run(verb, rest, user, respond)
        except UserFacingError as exc:
            await respond(text=str(exc), response_type="ephemeral")

    async def _run(self, verb: str, rest: str, user: str, respond: AsyncRespond) -> None:
        deps = self.deps
        store = deps.service.store
        if verb == "list":
            open_incidents = await deps.store(
                lambda: store.list_incidents(
                    statuses=[IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED], limit=20
                )
            )
            await _reply(respond, incident_list(open_incidents))
        elif verb == "show" and rest:
            incident = await self._incident(rest.split()[0].upper())
            record = await deps.store(store.latest_analysis, incident.id)
            timeline = await deps.store(store.timeline, incident.id)
            sent = await deps.store(store.deliveries, incident.id)
            analysis = Analysis.model_validate_json(record.body) if record else None
            await _reply(respond, incident_detail(incident, analysis, timeline, sent))
        elif verb in ("ack", "resolve") and rest:
            change = deps.service.acknowledge if verb == "ack" else deps.service.resolve
            incident = await self._transition(change, rest.split()[0].upper(), user)
            done = "acknowledged" if verb == "ack" else "resolved"
            await respond(text=f"{incident.id} {done}.", response_type="ephemeral")
        elif verb == "silence" and len(rest.split()) == 2:
            incident_id, duration = rest.split()
            try:
                window = parse_duration(duration)
            except ValueError as exc:
                raise UserFacingError(str(exc)) from exc
            await self.silence(incident_id.upper(), window, user)
            await respond(text=f"{incident_id.upper()} silenced for {duration}.",
                          response_type="ephemeral")  # fmt: skip
        elif verb == "stats":
            try:
                period = parse_duration(rest or "24h")
            except ValueError as exc:
                raise UserFacingError(str(exc)) from exc
            stats = await deps.store(
                compute_stats, store, datetime.now(UTC) - period, f"last {rest or '24h'}"
            )
            await _reply(respond, stats_message(stats))
        elif verb == "jira" and rest:
            key = await self.create_ticket(rest.split()[0].upper(), user)
            await respond(text=f"Created Jira ticket {key}.", response_type="ephemeral")
        elif verb == "postmortem" and rest:
            done = await self.postmortem(rest.split()[0].upper(), user)
            await respond(text=done, response_type="ephemeral")
        elif verb == "analyze" and rest:
            await self.analyze_text(rest, user, respond)
        else:
            await _reply(respond, help_message())

    async def analyze_text(self, text: str, user: str, respond: AsyncRespond) -> None:
        """Pasted text goes through the same pipeline as any alert, then its analysis is
        posted where the command was typed."""
        deps = self.deps
        try:
            report = await deps.store(deps.ingestor.ingest, text.encode(), f"slack:{user}")
        except UnreadablePayloadError as exc:
            raise UserFacingError(f"Could not read that: {exc.reason}") from exc
        outcome = report.outcomes[0]
        incident = outcome.incident
        if incident is None:
            raise UserFacingError("That reads as a resolution of nothing open: nothing to analyze.")
        for each in report.outcomes:
            await deps.publisher.publish(each)
        analysis = await deps.engine.analyze(incident, outcome.alert)
        if outcome.kind in (OutcomeKind.OPENED, OutcomeKind.REOPENED):
            await deps.publisher.publish_analysis(incident, analysis)
        message = render_incident(
            incident,
            analysis,
            jira_enabled=deps.settings.jira_enabled,
            email_enabled=deps.settings.email_enabled,
        )
        await _reply(respond, message, response_type="in_channel")

    async def message(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """A reply in an incident's thread gets an answer there; everything else is ignored:
        top-level messages, other threads, edits, and every bot, this one included."""
        thread_ts = event.get("thread_ts")
        if (
            not thread_ts
            or thread_ts == event.get("ts")
            or event.get("bot_id")
            or event.get("subtype")
            or event.get("user") in (None, self.deps.bot_user_id)
        ):
            return
        channel = event["channel"]
        store = self.deps.service.store
        incident_id = await self.deps.store(store.incident_for_message, channel, thread_ts)
        if incident_id is None:
            return
        incident = await self._incident(incident_id)
        replies = await client.conversations_replies(channel=channel, ts=thread_ts, limit=50)
        posted: list[dict[str, Any]] = replies.get("messages", [])
        thread = [
            ThreadMessage(
                author="bot" if m.get("bot_id") else "engineer", text=str(m.get("text", ""))
            )
            for m in posted
        ]
        try:
            answer = await self.deps.engine.follow_up(incident, thread)
        except ClaudeError as exc:
            replies_out = followup_messages(
                f"I could not get an answer from Claude just now ({exc}). Try again later."
            )
        else:
            replies_out = followup_messages(
                answer.text if answer else FOLLOWUP_NEEDS_CLAUDE,
                footer=f"{answer.model}, ${answer.cost_usd:.4f}" if answer else None,
            )
        for reply in replies_out:
            await self.deps.publisher.reply(channel, reply, thread_ts=thread_ts)

    async def error(self, error: Exception, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The last stop for an unexpected error: logged in full, shown to the person with a
        reference they can quote, never swallowed."""
        reference = secrets.token_hex(4)
        logger.error("Slack handler failed (ref %s)", reference, exc_info=error)
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        if user and channel:
            await _ephemeral(
                client, channel, user, f"Something went wrong (ref {reference}); it is logged."
            )


def _thread_post(message: dict[str, Any]) -> ThreadPost:
    """A Slack thread message as the post-mortem reads it: who (bot or engineer), what, when."""
    try:
        at = datetime.fromtimestamp(float(message.get("ts") or 0), UTC)
    except ValueError:
        at = None
    return ThreadPost(
        author="bot" if message.get("bot_id") else "engineer",
        text=str(message.get("text", "")),
        at=at,
    )


async def _ephemeral(client: AsyncWebClient, channel: str, user: str, text: str) -> None:
    if channel and user:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)


async def _reply(respond: AsyncRespond, message: Message, response_type: str = "ephemeral") -> None:
    await respond(text=message.text, blocks=message.blocks, response_type=response_type)
