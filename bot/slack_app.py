"""The Bolt app: buttons, the modals, `/incident`, and follow-up questions in threads.

One listener per button (`app.action(ActionId.X)`), and one handler per `/incident` verb in a
table: each reads its payload into a model first (bot/slack_requests.py), so a handler sees
what it acts on, not Slack's envelope. Every listener acks first (Slack wants it within 3 s),
then does its work; Bolt's async runner returns the ack to Slack as soon as `ack()` is awaited
and lets the listener go on. Errors the person can act on are shown to them ephemerally;
anything else is logged with a short reference that is shown to them too, never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from analysis.claude import ClaudeError
from analysis.engine import AnalysisEngine
from analysis.models import Analysis, ThreadMessage
from analysis.postmortem_document import ThreadPost
from analysis.postmortem_markdown import postmortem_filename, render_markdown
from blocks.commands import help_message, incident_detail, incident_list, stats_message
from blocks.ids import ActionId, BlockId, CallbackId, ModalMetadata
from blocks.incident import render_incident
from blocks.kit import Message
from blocks.modals import email_modal
from blocks.postmortem import postmortem_summary
from blocks.thread import email_outcome, followup_messages, ticket_note
from bot.followers import Followers
from bot.postmortems import IncidentMissingError, PostMortems
from bot.settings import Settings, parse_duration, split_addresses
from bot.slack_confirm import Confirmations
from bot.slack_pacing import Priority
from bot.slack_publisher import SlackPublisher
from bot.slack_requests import (
    NEEDS_AN_ARGUMENT,
    Click,
    ClickHandler,
    SlashCommand,
    UserFacingError,
    VerbHandler,
)
from bot.stats import compute_stats
from incidents.lifecycle import (
    IncidentNotFoundError,
    IncidentService,
    InvalidTransitionError,
)
from incidents.models import Incident, IncidentStatus
from incidents.offload import Offload
from incidents.store import (
    AnalysisStore,
    ChatRefStore,
    IncidentStore,
    OutboxStore,
    ReportStore,
    TicketStore,
)
from ingest.pipeline import Ingestor, UnreadablePayloadError
from notify.dispatch import Notifier
from notify.jira import JiraTickets
from notify.outbox import DeliveryError
from notify.tickets import TicketResult, create_once

logger = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
_SILENCES = {ActionId.SILENCE_1H: timedelta(hours=1), ActionId.SILENCE_24H: timedelta(hours=24)}
FOLLOWUP_NEEDS_CLAUDE = (
    "Follow-up questions need Claude, and this bot runs with the offline analyzer "
    "(no `ANTHROPIC_API_KEY`). The analysis above is all it can say."
)


class SlackStore(
    IncidentStore, AnalysisStore, ReportStore, ChatRefStore, TicketStore, OutboxStore, Protocol
):
    """The store roles the listeners read and write: every view of an incident is here."""


@dataclass
class SlackDeps:
    settings: Settings
    service: IncidentService
    store: SlackStore
    ingestor: Ingestor
    engine: AnalysisEngine
    publisher: SlackPublisher
    offload: Offload
    notifier: Notifier
    tickets: JiraTickets | None = None
    postmortems: PostMortems | None = None
    bot_user_id: str = ""


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Attach every listener. Nothing runs until Socket Mode delivers an envelope."""
    handlers = _Handlers(deps)
    buttons: Mapping[ActionId, ClickHandler] = {
        ActionId.ACKNOWLEDGE: handlers.acknowledge,
        ActionId.RESOLVE: handlers.resolve_clicked,
        ActionId.REANALYZE: handlers.reanalyze_clicked,
        ActionId.SILENCE_1H: handlers.silence_clicked(_SILENCES[ActionId.SILENCE_1H]),
        ActionId.SILENCE_24H: handlers.silence_clicked(_SILENCES[ActionId.SILENCE_24H]),
        ActionId.CREATE_JIRA: handlers.create_ticket_clicked,
        ActionId.EMAIL: handlers.email_clicked,
        ActionId.POSTMORTEM: handlers.postmortem_clicked,
        ActionId.CONFIRM: handlers.confirm_clicked,
    }
    for action, handler in buttons.items():
        app.action(action.value)(_button(handler))
    app.view(CallbackId.EMAIL.value)(handlers.email_submitted)
    app.view(CallbackId.CONFIRM.value)(handlers.confirmations.submitted)
    app.command("/incident")(handlers.command)
    app.event("message")(handlers.message)
    app.error(handlers.error)


def _button(
    handler: ClickHandler,
) -> Callable[[AsyncAck, dict[str, Any], AsyncWebClient], Awaitable[None]]:
    """The listener of one button: ack, read the click, act, and show the person what they
    can act on."""

    async def listener(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            click = Click.read(body)
            await handler(click, client)
        except UserFacingError as exc:
            channel = (body.get("channel") or {}).get("id", "")
            await _ephemeral(client, channel, body["user"]["id"], str(exc))

    return listener


class _Handlers:
    def __init__(self, deps: SlackDeps) -> None:
        self.deps = deps
        self.followers = Followers(slack=deps.publisher, notifier=deps.notifier)
        self.confirmations = Confirmations(deps.service, deps.store, deps.publisher, deps.offload)
        self.verbs: Mapping[str, VerbHandler] = {
            "list": self._list,
            "show": self._show,
            "ack": self._acknowledge,
            "resolve": self._resolve,
            "silence": self._silence,
            "stats": self._stats,
            "jira": self._jira,
            "postmortem": self._postmortem,
            "analyze": self._analyze,
        }

    async def acknowledge(self, click: Click, client: AsyncWebClient) -> None:
        await self._transition(self.deps.service.acknowledge, click.incident_id, click.user)

    async def resolve_clicked(self, click: Click, client: AsyncWebClient) -> None:
        await self.resolve(click.incident_id, click.user, click.trigger_id, client)

    async def resolve(
        self, incident_id: str, user: str, trigger_id: str, client: AsyncWebClient
    ) -> Incident:
        """Resolves, from the button or `/incident resolve`, and offers the optional modal for
        the cause and the fix: opened first, while the trigger is fresh."""
        incident = await self._incident(incident_id)
        await self.confirmations.offer(incident, trigger_id, client)
        return await self._transition(self.deps.service.resolve, incident_id, user)

    async def confirm_clicked(self, click: Click, client: AsyncWebClient) -> None:
        incident = await self._incident(click.incident_id)
        if not await self.confirmations.offer(incident, click.trigger_id, client):
            raise UserFacingError(
                "Slack did not open the form; click again, or reply in the thread with "
                "`cause: …` or `fix: …`."
            )

    async def reanalyze_clicked(self, click: Click, client: AsyncWebClient) -> None:
        await self.reanalyze(click.incident_id, click.user)

    def silence_clicked(self, duration: timedelta) -> ClickHandler:
        async def silence(click: Click, client: AsyncWebClient) -> None:
            await self.silence(click.incident_id, duration, click.user)

        return silence

    async def create_ticket_clicked(self, click: Click, client: AsyncWebClient) -> None:
        await self.create_ticket(click.incident_id, click.user)

    async def email_clicked(self, click: Click, client: AsyncWebClient) -> None:
        incident = await self._incident(click.incident_id)
        await client.views_open(
            trigger_id=click.trigger_id,
            view=email_modal(incident, recipients=self.deps.settings.email_recipients),
        )

    async def postmortem_clicked(self, click: Click, client: AsyncWebClient) -> None:
        told = await self.postmortem(click.incident_id, click.user)
        await _ephemeral(client, click.channel, click.user, told)

    async def _transition(self, change: Callable[[str, str], Incident], incident_id: str,
                          user: str) -> Incident:  # fmt: skip
        try:
            incident = await self.deps.offload(change, incident_id, user)
        except IncidentNotFoundError as exc:
            raise UserFacingError(f"There is no incident {incident_id}.") from exc
        except InvalidTransitionError as exc:
            raise UserFacingError(f"Nothing done: {exc}.") from exc
        await self.followers.transitioned(incident, user)
        return incident

    async def reanalyze(self, incident_id: str, user: str) -> Analysis:
        incident = await self._incident(incident_id)
        occurrences = await self.deps.offload(self.deps.store.occurrences, incident_id, 1)
        if not occurrences:
            raise UserFacingError(f"{incident_id} has no alert left to analyze.")
        analysis = await self.deps.engine.analyze(incident, occurrences[0].alert, force=True)
        await self.deps.publisher.publish_analysis(incident, analysis, reanalyzed_by=user)
        return analysis

    async def create_ticket(self, incident_id: str, user: str) -> str:
        """The incident's Jira ticket (`notify.tickets.create_once`: one however many clicks),
        told in its thread; the ticket's key, for the one who asked."""
        deps = self.deps
        incident = await self._incident(incident_id)
        permalink = await deps.publisher.permalink(incident_id)
        outcome = await asyncio.to_thread(
            create_once,
            deps.store,
            deps.tickets,
            incident,
            user,
            permalink,
            datetime.now(UTC),
        )
        if outcome.result is TicketResult.EXISTS:
            raise UserFacingError(
                f"{incident_id} already has Jira ticket <{outcome.url}|{outcome.key}>."
            )
        if outcome.result is TicketResult.NOT_CONFIGURED:
            raise UserFacingError("Jira is not configured here: no ticket was created.")
        if outcome.result is TicketResult.IN_PROGRESS:
            raise UserFacingError(f"A Jira ticket for {incident_id} is being created right now.")
        if outcome.result is TicketResult.FAILED:
            await deps.notifier.record_ticket(incident_id, user, key=None, error=outcome.reason)
            raise UserFacingError(f"No Jira ticket was created: {outcome.reason}")
        assert outcome.key is not None and outcome.url is not None
        await deps.notifier.record_ticket(incident_id, user, key=outcome.key, error=None)
        await deps.publisher.sync(incident_id, shown_by_user=True)
        await deps.publisher.thread_note(
            incident_id, ticket_note(outcome.key, outcome.url, user), Priority.USER
        )
        return outcome.key

    async def postmortem(self, incident_id: str, user: str) -> str:
        """Draft the post-mortem from the incident, its timeline and its thread, and post it
        in the thread as a Markdown file under a short summary; what to tell the person."""
        deps = self.deps
        if deps.postmortems is None:
            raise UserFacingError("Post-mortem drafts are not available here.")
        ref = await deps.offload(deps.store.message_ref, incident_id)
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
            silence = await self.deps.offload(
                self.deps.service.silence, incident_id, duration, user
            )
        except IncidentNotFoundError as exc:
            raise UserFacingError(f"There is no incident {incident_id}.") from exc
        await self.followers.silenced(incident_id, silence)

    async def _incident(self, incident_id: str) -> Incident:
        incident = await self.deps.offload(self.deps.store.get_incident, incident_id)
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
        ref = await self.deps.offload(self.deps.store.message_ref, incident.id)
        if ref is not None:
            await _ephemeral(client, ref.channel, user, text)
        else:
            await self.deps.publisher.reply(user, Message(text=text, blocks=[]))

    async def command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        slash = SlashCommand.read(command)
        handler = self.verbs.get(slash.verb)
        try:
            if handler is None or (slash.verb in NEEDS_AN_ARGUMENT and not slash.argument):
                await _reply(respond, help_message())
                return
            await handler(slash, respond, client)
        except UserFacingError as exc:
            await respond(text=str(exc), response_type="ephemeral")

    async def _list(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        store = self.deps.store
        open_incidents = await self.deps.offload(
            lambda: store.list_incidents(
                statuses=[IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED], limit=20
            )
        )
        await _reply(respond, incident_list(open_incidents))

    async def _show(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        store = self.deps.store
        incident = await self._incident(slash.incident_id)
        record = await self.deps.offload(store.latest_analysis, incident.id)
        timeline = await self.deps.offload(store.timeline, incident.id)
        sent = await self.deps.offload(store.deliveries, incident.id)
        analysis = Analysis.model_validate_json(record.body) if record else None
        await _reply(respond, incident_detail(incident, analysis, timeline, sent))

    async def _acknowledge(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        incident = await self._transition(
            self.deps.service.acknowledge, slash.incident_id, slash.user
        )
        await respond(text=f"{incident.id} acknowledged.", response_type="ephemeral")

    async def _resolve(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        incident = await self.resolve(slash.incident_id, slash.user, slash.trigger_id, client)
        await respond(text=f"{incident.id} resolved.", response_type="ephemeral")

    async def _silence(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        words = slash.argument.split()
        if len(words) != 2:
            await _reply(respond, help_message())
            return
        incident_id, duration = words[0].upper(), words[1]
        try:
            window = parse_duration(duration)
        except ValueError as exc:
            raise UserFacingError(str(exc)) from exc
        await self.silence(incident_id, window, slash.user)
        await respond(text=f"{incident_id} silenced for {duration}.", response_type="ephemeral")

    async def _stats(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        try:
            period = parse_duration(slash.argument or "24h")
        except ValueError as exc:
            raise UserFacingError(str(exc)) from exc
        stats = await self.deps.offload(
            compute_stats,
            self.deps.store,
            datetime.now(UTC) - period,
            f"last {slash.argument or '24h'}",
        )
        await _reply(respond, stats_message(stats))

    async def _jira(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        key = await self.create_ticket(slash.incident_id, slash.user)
        await respond(text=f"Created Jira ticket {key}.", response_type="ephemeral")

    async def _postmortem(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        done = await self.postmortem(slash.incident_id, slash.user)
        await respond(text=done, response_type="ephemeral")

    async def _analyze(
        self, slash: SlashCommand, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await self.analyze_text(slash.argument, slash.user, respond)

    async def analyze_text(self, text: str, user: str, respond: AsyncRespond) -> None:
        """Pasted text goes through the same pipeline as any alert, then its analysis is
        posted where the command was typed."""
        deps = self.deps
        try:
            report = await deps.offload(deps.ingestor.ingest, text.encode(), f"slack:{user}")
        except UnreadablePayloadError as exc:
            raise UserFacingError(f"Could not read that: {exc.reason}") from exc
        outcome = report.outcomes[0]
        incident = outcome.incident
        if incident is None:
            raise UserFacingError("That reads as a resolution of nothing open: nothing to analyze.")
        await self.followers.recorded(report)
        analysis = await deps.engine.analyze(incident, outcome.alert)
        await self.followers.analyzed(outcome, analysis)
        message = render_incident(
            incident,
            analysis,
            jira_enabled=deps.settings.jira_enabled,
            email_enabled=deps.settings.email_enabled,
        )
        await _reply(respond, message, response_type="in_channel")

    async def message(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """A reply in an incident's thread gets an answer there, unless it confirms the cause
        or the fix (`cause: …`, `fix: …`); everything else is ignored: top-level messages,
        other threads, edits, and every bot, this one included."""
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
        store = self.deps.store
        incident_id = await self.deps.offload(store.incident_for_message, channel, thread_ts)
        if incident_id is None:
            return
        if await self.confirmations.from_reply(incident_id, event["user"], event.get("text", "")):
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
