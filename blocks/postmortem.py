"""The short thread message posted beside a post-mortem file: what the draft says in brief,
who asked for it, and who drafted it, so nobody mistakes a draft for the team's findings.

The document itself is the Markdown file; this message only has to make people open it.
Every text that came from an alert or a model is escaped before it is cut, so that a title
reading `<!channel>` or a summary with a link stays literal text.
"""

from __future__ import annotations

from analysis.models import AnalyzerKind
from analysis.postmortem_document import PostMortem
from analysis.postmortem_markdown import postmortem_filename
from blocks.incident import status_text
from blocks.kit import Message, context, section
from blocks.text import code, escape, mention_or_text, truncate
from incidents.models import Incident

TITLE_SHOWN = 150
SUMMARY_SHOWN = 700
FALLBACK_SHOWN = 300
NOTE_SHOWN = 600


def postmortem_summary(incident: Incident, pm: PostMortem, requested_by: str) -> Message:
    """The message posted in the thread with the post-mortem file."""
    title = truncate(escape(" ".join(incident.title.split())), TITLE_SHOWN)
    headline = f":memo: *Post-mortem draft* for {escape(incident.id)}: {title}"
    asked = (
        f"{mention_or_text(requested_by)} asked for it · {status_text(incident)} · "
        f"the draft is in {code(postmortem_filename(incident))}; review it before sharing."
    )
    summary = truncate(escape(pm.summary.strip()), SUMMARY_SHOWN)
    text = truncate(f"Post-mortem draft for {escape(incident.id)}: {title}", FALLBACK_SHOWN)
    blocks = [section(f"{headline}\n{summary}"), section(asked), context([postmortem_credit(pm)])]
    return Message(text=text, blocks=blocks)


def postmortem_credit(pm: PostMortem) -> str:
    """Who drafted it: Claude with its model and cost, or the offline note, which says plainly
    that it read the timeline alone (and why Claude did not draft it, when it was asked)."""
    if pm.written_by is AnalyzerKind.OFFLINE:
        return f":gear: {truncate(escape(pm.note), NOTE_SHOWN)}"
    credit = [":robot_face: Drafted by Claude"]
    if pm.model:
        credit.append(code(pm.model))
    credit.append(f"${pm.cost_usd:.4f}")
    return " · ".join(credit)
