"""Posts in an incident's thread: the analysis the message had no room for, notes on what
happened (reopened, resolved, silenced, re-analyzed), and answers to follow-up questions.

The thread is the incident's log for the people in it, so the notes say what changed and who
did it, in one line each; the incident message itself is updated in place by the publisher.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from analysis.models import Analysis
from blocks.ids import ActionId, ActionValue, BlockId
from blocks.incident import analysis_credit, format_time, status_text
from blocks.investigation import investigation_summary, investigation_text
from blocks.kit import EMPTY, Message, actions, button, context, section
from blocks.limits import SECTION_TEXT_MAX
from blocks.text import (
    escape,
    link,
    mention_or_text,
    oncall_mention,
    split_for_sections,
    truncate,
)
from incidents.lifecycle import short_duration
from incidents.models import Delivery, DeliveryStatus, Incident, IncidentStatus, Silence

# A long answer reads as a few posts of about 12,000 characters rather than one wall.
SECTIONS_PER_MESSAGE = 4
PREVIEW_MAX = 300
TITLE_MAX = 200


def continuation(incident: Incident, overflow: Sequence[str]) -> list[Message]:
    """The `overflow` of `render_incident`, as thread posts in reading order."""
    return _paged(list(overflow), f"{escape(incident.id)}: the analysis, continued")


def reopened_note(incident: Incident) -> Message:
    """Reopened: when, how often, and a nudge to silence it when it flaps."""
    at = incident.recent_reopens[-1] if incident.recent_reopens else incident.last_seen_at
    text = f":leftwards_arrow_with_hook: Reopened at {format_time(at)}: the alert fired again."
    if incident.reopen_count > 1:
        text += f" That makes {incident.reopen_count} reopens."
    if incident.flapping:
        text += (
            "\n:repeat: *Flapping*: it keeps coming back. "
            "*Silence* it while the cause is fixed, or tune the alarm."
        )
    return Message(text=text, blocks=[section(text)])


def resolved_note(incident: Incident) -> Message:
    """Resolved: after how long, by whom (or by the alert clearing), and how many alerts;
    with a button to say what caused it and what fixed it, since nobody clicked Resolve
    (which offers that) when the alert resolved the incident itself."""
    if incident.status is not IncidentStatus.RESOLVED:
        raise ValueError(f"{incident.id} is {incident.status.value}, not resolved")
    text = f"{status_text(incident)} · {incident.occurrences} occurrence(s)."
    record = button("Record cause and fix", ActionId.CONFIRM, ActionValue(incident_id=incident.id))
    return Message(
        text=text, blocks=[section(text), actions(BlockId.CONFIRM_ACTIONS.value, [record])]
    )


def confirmed_note(incident: Incident) -> Message:
    """Who confirmed what, and what it is for: the next analysis of the problem starts from
    it, as a hypothesis."""
    confirmed = incident.confirmed
    if confirmed is None:
        raise ValueError(f"{incident.id} has no confirmed cause or fix")
    said = [
        f"the cause: “{escape(confirmed.cause)}”" if confirmed.cause else "",
        f"the fix: “{escape(confirmed.fix)}”" if confirmed.fix else "",
    ]
    text = (
        f":white_check_mark: {mention_or_text(confirmed.by)} confirmed "
        + " and ".join(part for part in said if part)
        + ". The next analysis of this problem, or of a similar one, will check it first."
    )
    shown = truncate(text, SECTION_TEXT_MAX)
    return Message(text=truncate(text, PREVIEW_MAX), blocks=[section(shown)])


def reanalyzed_note(analysis: Analysis, requested_by: str) -> Message:
    """Who asked for the new analysis the message now shows, and what it cost: the message is
    updated in place, so without this note nobody would know the analysis changed."""
    text = (
        f":arrows_counterclockwise: {mention_or_text(requested_by)} asked for a new analysis; "
        f"the message above now shows it (confidence {analysis.confidence:.0%})."
    )
    return Message(text=text, blocks=[section(text), context([analysis_credit(analysis)])])


def ticket_note(key: str, url: str, created_by: str) -> Message:
    """Who opened the Jira ticket, with its link: the thread is where people look for it."""
    text = f":ticket: {mention_or_text(created_by)} created Jira ticket {link(url, key)}."
    return Message(text=text, blocks=[section(text)])


def silenced_note(silence: Silence) -> Message:
    """Who muted the problem and until when, so that the quiet that follows is explained."""
    text = (
        f":zzz: {mention_or_text(silence.by)} silenced this alert until "
        f"{format_time(silence.until)}. New alerts are still recorded, but not posted."
    )
    return Message(text=text, blocks=[section(text)])


def followup_messages(answer: str, *, footer: str | None = None) -> list[Message]:
    """The model's answer to a question asked in the thread, escaped (it may quote the alert)
    and cut into as many sections and posts as it needs; `footer` (model, cost) goes under the
    last post, escaped too."""
    escaped = escape(answer)
    messages = _paged(
        split_for_sections(escaped, SECTION_TEXT_MAX) or [EMPTY],
        truncate(escaped, PREVIEW_MAX).strip() or EMPTY,
    )
    if footer and footer.strip():
        last = messages[-1]
        messages[-1] = Message(text=last.text, blocks=[*last.blocks, context([escape(footer)])])
    return messages


def analysis_posts(
    incident: Incident, analysis: Analysis, overflow: Sequence[str]
) -> list[Message]:
    """What goes under a new analysis in the thread: the rest of it, then how it was
    investigated."""
    return [*continuation(incident, overflow), *investigation_note(analysis)]


def investigation_note(analysis: Analysis) -> list[Message]:
    """ "How I investigated" under the message, in as many posts as the trace needs; none when
    the analysis was not investigated, or is a cached one (its trace went with the original)."""
    text = investigation_text(analysis)
    if text is None or analysis.investigation is None or analysis.cached:
        return []
    posts = _paged(
        split_for_sections(text, SECTION_TEXT_MAX),
        f"How I investigated: {investigation_summary(analysis.investigation)}",
    )
    last = posts[-1]
    redacted = context(["Tool results were redacted before Claude read them."])
    posts[-1] = Message(text=last.text, blocks=[*last.blocks, redacted])
    return posts


def _paged(parts: list[str], text: str) -> list[Message]:
    return [
        Message(text=text, blocks=[section(part) for part in parts[i : i + SECTIONS_PER_MESSAGE]])
        for i in range(0, len(parts), SECTIONS_PER_MESSAGE)
    ]


_CHANNEL_NAMES = {
    "pagerduty": "PagerDuty",
    "teams": "Teams",
    "email": "Email",
    "jira": "Jira",
    "slack": "Slack",
}


def delivery_sent_note(delivery: Delivery) -> Message | None:
    """What the thread should know was sent: an email (who to whom), a page, a Jira move.
    Mirrored acknowledgements, Teams cards and comments go unsaid: they add noise, not news;
    `/incident show` lists them all."""
    if delivery.target == "email":
        recipients = ", ".join(str(r) for r in delivery.request.get("to") or [])
        who = "The bot" if delivery.action == "auto" else mention_or_text(delivery.requested_by)
        text = f":email: {who} emailed this incident to {escape(recipients)}."
        note = str(delivery.request.get("note") or "").strip()
        if note:
            text += f"\n>{truncate(escape(' '.join(note.split())), PREVIEW_MAX)}"
    elif delivery.target == "pagerduty" and delivery.action == "trigger":
        text = ":rotating_light: Paged on-call through PagerDuty."
    elif delivery.target == "jira" and delivery.action == "transition" and delivery.result:
        text = f":ticket: Jira {escape(delivery.result)}."
    else:
        return None
    return Message(text=text, blocks=[section(text)])


def escalation_reminder(
    incident: Incident, round_number: int, repeats: int, waited: timedelta, mention: str | None
) -> Message:
    """The nudge in the thread of an incident nobody owns yet: who is on call (when a mention
    is configured), how long it has waited, and how to stop the reminders."""
    who = f"{oncall_mention(mention)} " if mention else ""
    last = " This is the last reminder." if round_number >= repeats else ""
    text = (
        f":alarm_clock: {who}*{escape(incident.id)}* is still unacknowledged after "
        f"{short_duration(waited)}: {truncate(escape(incident.title), TITLE_MAX)}. "
        f"*Acknowledge* it on the message above to own it and stop the reminders "
        f"(reminder {round_number} of {repeats}).{last}"
    )
    return Message(text=text, blocks=[section(text)])


def graph_comment(alarm_name: str) -> str:
    """The line above the uploaded metric graph (files upload's `initial_comment`)."""
    return (
        f":chart_with_upwards_trend: {truncate(escape(alarm_name), TITLE_MAX)}: the metric around "
        "the alarm, with the threshold dashed and the alarm's evaluation window shaded."
    )


def graph_skipped_note(reason: str) -> Message:
    """Why there is no graph, so that its absence is not mistaken for a quiet metric."""
    text = f":information_source: No metric graph: {truncate(escape(reason), PREVIEW_MAX)}"
    return Message(text=text, blocks=[context([text])])


def delivery_failed_note(delivery: Delivery) -> Message:
    """A notification given up for good, with Jira's, the mail server's or PagerDuty's reason:
    a silent failure would leave people believing someone was paged or mailed."""
    channel = _CHANNEL_NAMES.get(delivery.target, delivery.target)
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    text = (
        f":warning: {channel} {escape(delivery.action)} was not delivered after {tries}: "
        f"{escape(delivery.last_error or 'no reason given')}"
    )
    return Message(text=text, blocks=[section(truncate(text, SECTION_TEXT_MAX))])


def email_outcome(incident_id: str, delivery: Delivery) -> str:
    """What the sender is told at once: sent, on its way after a passing failure, or not sent
    and why; the thread records the mail itself when it goes out."""
    recipients = ", ".join(str(r) for r in delivery.request.get("to") or [])
    if delivery.status is DeliveryStatus.SENT:
        return f"Emailed {incident_id} to {recipients}."
    if delivery.status is DeliveryStatus.PENDING:
        return (
            f"The email about {incident_id} is not sent yet ({delivery.last_error}); it is "
            "retried automatically, and the incident's thread will say when it goes out."
        )
    return f"No email about {incident_id} was sent: {delivery.last_error}."
