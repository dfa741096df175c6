"""Text for Slack: escaped so that alert and model text can only ever read as text, and cut to
Slack's limits where a reader would cut it.

Slack parses `<...>` in every text object: `<!channel>` notifies a whole channel, `<@U1>`
pings a person, `<http://a|b>` shows `b` and opens `a`. Escaping `&`, `<` and `>` (Slack's
only control characters) makes all of these literal text, whatever the alert or the model
wrote. Our own markup (bold, code, the acknowledger's mention, the Jira link) is added around
escaped text, never escaped itself.

Cutting works on escaped text, because that is what Slack counts, and so it never splits an
entity (`&amp;`), a run of backticks, or leaves a code block open.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ELLIPSIS = "…"
FENCE = "```"
# Commands longer than this read better as a block than as an inline span that wraps.
INLINE_CODE_MAX = 200
_CLOSE_FENCE = "\n" + FENCE
_OPEN_FENCE = FENCE + "\n"
# C0 and C1 controls other than tab and newline: invisible at best, refused at worst.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{1,32}")
_SLACK_GROUP = re.compile(r"S[A-Z0-9]{2,32}")
# The longest entity `escape` writes is `&amp;`: a cut can fall at most 4 characters into one.
_ENTITY_REACH = 4
# Room for a closing fence and at least one character of text.
_MIN_CUT = len(_CLOSE_FENCE) + 1
_MIN_SECTION = 64


def escape(text: str) -> str:
    """`text` as literal Slack text: `&`, `<`, `>` as entities, control characters dropped.

    Already-escaped input (`&lt;`) is escaped again (`&amp;lt;`), so it reads exactly as the
    alert wrote it. Line endings become `\\n`.
    """
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def from_slack(text: str) -> str:
    """A message's `text` as the person typed it: Slack sends `&`, `<` and `>` as entities and
    mentions, channels and links as markup (`<@U123>`, `<#C1|ops>`, `<https://x|docs>`,
    `<!here>`). Kept words are plain text again, to be escaped wherever they are shown."""
    return (
        _SLACK_MARKUP.sub(_markup_text, text)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


_SLACK_MARKUP = re.compile(r"<([^<>\n]*)>")


def _markup_text(markup: re.Match[str]) -> str:
    target, _, label = markup[1].partition("|")
    if target.startswith("!"):  # <!here>, <!subteam^S1|@oncall>
        return label if label.startswith("@") else "@" + (label or target[1:].split("^")[0])
    if target.startswith(("@", "#")):  # <@U123|ann>, <#C1|ops>
        return target[0] + label if label else target
    return label or target


def code(text: str) -> str:
    """`text` escaped and set as code: inline when short, on one line and free of backticks,
    else a block; "" for blank text.

    Slack has no escape for a backtick inside code, so a backtick would end an inline span:
    such text goes into a block, where single backticks are literal. Only a triple backtick
    could end a block, so when the text has one, its backticks become `ˋ` (U+02CB), visibly
    not a fence.
    """
    body = escape(text.strip())
    if not body:
        return ""
    if "`" not in body and "\n" not in body and len(body) <= INLINE_CODE_MAX:
        return f"`{body}`"
    if FENCE in body:
        body = body.replace("`", "\u02cb")
    return f"{FENCE}\n{body}\n{FENCE}"


def mention_or_text(actor: str) -> str:
    """A Slack user id as a mention, anything else (an alert source, "bot") as escaped text.

    Only ids our own code wrote look like `U…`/`W…`; the check keeps a forged actor from
    turning into markup.
    """
    if _SLACK_USER.fullmatch(actor):
        return f"<@{actor}>"
    return escape(actor)


def oncall_mention(slack_id: str) -> str:
    """A user (`U…`/`W…`) or user group (`S…`) id as the mention that notifies them; Slack
    writes a group mention `<!subteam^S…>`. Anything else is shown as text, never as markup."""
    if _SLACK_USER.fullmatch(slack_id):
        return f"<@{slack_id}>"
    if _SLACK_GROUP.fullmatch(slack_id):
        return f"<!subteam^{slack_id}>"
    return escape(slack_id)


def link(url: str, label: str) -> str:
    """A Slack link to an http(s) `url` showing `label`; only the label when the URL is not one.

    Inside `<url|label>`, a `|` in the URL would end it early and `>` would end the link, so
    the URL is escaped and its pipes percent-encoded.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        return escape(label)
    return f"<{escape(url).replace('|', '%7C')}|{escape(label)}>"


def cut(text: str, limit: int) -> tuple[str, str]:
    """`text` as (head, rest): head fits in `limit`, ends at the best boundary, and rest goes on
    from there. A code block open at the cut is closed in head and reopened in rest.

    Boundaries, best first: a blank line, a line end, a space, any character that does not
    split an entity or a backtick run. A boundary counts only in the second half of the room,
    so that a cut never throws away most of what would fit.
    """
    if limit < _MIN_CUT:
        raise ValueError(f"cannot cut text to {limit} characters")
    if len(text) <= limit:
        return text, ""
    end, resume = _boundary(text, limit)
    head = text[:end]
    if head.count(FENCE) % 2 == 0:
        return head, text[resume:]
    end, resume = _boundary(text, limit - len(_CLOSE_FENCE))
    head = text[:end]
    if head.count(FENCE) % 2 == 0:
        return head, text[resume:]
    return head + _CLOSE_FENCE, _OPEN_FENCE + text[resume:]


def truncate(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a boundary and marked with "…" when it had to be."""
    if len(text) <= limit:
        return text
    head, _ = cut(text, limit - len(ELLIPSIS))
    return head + ELLIPSIS


def split_for_sections(text: str, limit: int) -> list[str]:
    """`text` as consecutive parts of at most `limit` characters each, blank parts dropped.

    For text that must be shown whole across several sections or thread messages.
    """
    if limit < _MIN_SECTION:
        raise ValueError(f"sections of {limit} characters cannot make progress")
    parts: list[str] = []
    rest = text
    while rest.strip():
        head, rest = cut(rest, limit)
        if head.strip():
            parts.append(head)
    return parts


def _boundary(text: str, room: int) -> tuple[int, int]:
    """Where head ends and rest resumes, for a head of at most `room` characters."""
    floor = room // 2
    for separator in ("\n\n", "\n", " "):
        at = text.rfind(separator, floor, room + len(separator))
        if at > 0:
            resume = at + len(separator)
            while separator != " " and text.startswith("\n", resume):
                resume += 1
            return at, resume
    end = room
    amp = text.rfind("&", max(0, end - _ENTITY_REACH), end)
    if amp != -1 and ";" not in text[amp:end]:
        end = amp
    while end > 1 and text[end - 1] == "`" and text[end] == "`":
        end -= 1
    if end <= 1:
        end = room
    return end, end
