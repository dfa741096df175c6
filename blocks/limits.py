"""Slack's size limits, and one check of a payload against all of them.

Slack refuses a whole message (`invalid_blocks`) when a single text is one character too long,
so an incident that cannot be posted is the price of a missed limit. The builders cut to these
numbers; `assert_within_slack_limits` proves it, in unit tests and on every payload the
end-to-end tests capture. It also round-trips each block through slack_sdk's models, which
catch a misspelt key or an unknown block type that a length check would miss.

The checks import slack_sdk themselves: the builders import this module for its numbers, and
a bot printing to the console must not load slack_sdk for them (issue 13's memory budget).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MESSAGE_BLOCKS_MAX = 50
MODAL_BLOCKS_MAX = 100
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
# Slack accepts 2000 characters in a button value; 255 is the older, stricter limit that
# every client honours, and a value that needs more is a sign it carries too much.
ACTION_VALUE_MAX = 255
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
URL_MAX = 3000
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
INPUT_LABEL_MAX = 2000
INPUT_HINT_MAX = 2000
INPUT_PLACEHOLDER_MAX = 150
INPUT_VALUE_MAX = 3000
MODAL_TITLE_MAX = 24
MODAL_BUTTON_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
# What slack_sdk's models raise on a payload they refuse, besides their own
# SlackObjectFormationError: each is a finding, not a crash.
_SDK_REFUSALS = (AttributeError, KeyError, TypeError, ValueError)
# Slack cuts a message's `text` at 40,000 characters but asks for at most 4,000; the fallback
# is a notification line, so the stricter number is the useful one.
MESSAGE_TEXT_MAX = 4000


def slack_limit_violations(
    blocks: Sequence[Mapping[str, Any]],
    *,
    text: str | None = None,
    max_blocks: int = MESSAGE_BLOCKS_MAX,
) -> list[str]:
    """Every way `blocks` (and the fallback `text`, when given) would be refused by Slack.

    Empty means the payload is within the limits. A list, rather than the first failure, so
    that a test report shows everything wrong with a payload at once.
    """
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks, more than {max_blocks}")
    if text is not None:
        _check_text(problems, "fallback text", text, MESSAGE_TEXT_MAX)
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        block_id = block.get("block_id")
        if block_id is not None:
            _check_length(problems, f"{where} block_id", block_id, BLOCK_ID_MAX)
            if block_id in seen_ids:
                problems.append(f"{where}: block_id {block_id!r} is not unique")
            seen_ids.add(block_id)
        _check_block(problems, where, block)
        _check_round_trip(problems, where, block)
    return problems


def assert_within_slack_limits(
    blocks: Sequence[Mapping[str, Any]],
    *,
    text: str | None = None,
    max_blocks: int = MESSAGE_BLOCKS_MAX,
) -> None:
    """Raise AssertionError naming every limit the payload breaks.

    Raises explicitly instead of using `assert`, so that the check still runs under
    `python -O`.
    """
    problems = slack_limit_violations(blocks, text=text, max_blocks=max_blocks)
    if problems:
        raise AssertionError("payload breaks Slack's limits:\n  " + "\n  ".join(problems))


def assert_view_within_slack_limits(view: Mapping[str, Any]) -> None:
    """The modal's own limits (title, buttons, metadata, callback id), then its blocks'."""
    problems: list[str] = []
    for key, limit in (("title", MODAL_TITLE_MAX), ("submit", MODAL_BUTTON_MAX)):
        _check_text_object(problems, f"view {key}", view.get(key), limit, required=True)
    _check_text_object(problems, "view close", view.get("close"), MODAL_BUTTON_MAX)
    _check_length(problems, "private_metadata", view.get("private_metadata"), PRIVATE_METADATA_MAX)
    _check_length(problems, "callback_id", view.get("callback_id"), CALLBACK_ID_MAX)
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.views import View

    try:
        if View(**view).to_dict() != view:
            problems.append("view does not survive slack_sdk's View round trip")
    except (SlackObjectFormationError, *_SDK_REFUSALS) as error:
        problems.append(f"view refused by slack_sdk: {error}")
    problems += slack_limit_violations(view.get("blocks", []), max_blocks=MODAL_BLOCKS_MAX)
    if problems:
        raise AssertionError("view breaks Slack's limits:\n  " + "\n  ".join(problems))


def _check_block(problems: list[str], where: str, block: Mapping[str, Any]) -> None:
    kind = block.get("type")
    if kind == "header":
        _check_text_object(problems, f"{where} text", block.get("text"), HEADER_TEXT_MAX, True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"{where}: neither text nor fields")
        if "text" in block:
            _check_text_object(problems, f"{where} text", block["text"], SECTION_TEXT_MAX, True)
        fields = block.get("fields", [])
        if len(fields) > FIELDS_MAX:
            problems.append(f"{where}: {len(fields)} fields, more than {FIELDS_MAX}")
        for number, field in enumerate(fields):
            _check_text_object(problems, f"{where} field {number}", field, FIELD_TEXT_MAX, True)
        if "accessory" in block:
            _check_element(problems, f"{where} accessory", block["accessory"])
    elif kind == "context":
        elements = block.get("elements", [])
        if not 0 < len(elements) <= CONTEXT_ELEMENTS_MAX:
            problems.append(f"{where}: {len(elements)} elements, not 1-{CONTEXT_ELEMENTS_MAX}")
        for number, element in enumerate(elements):
            if element.get("type") in ("mrkdwn", "plain_text"):
                _check_text_object(
                    problems, f"{where} element {number}", element, CONTEXT_TEXT_MAX, True
                )
    elif kind == "actions":
        elements = block.get("elements", [])
        if not 0 < len(elements) <= ACTIONS_ELEMENTS_MAX:
            problems.append(f"{where}: {len(elements)} elements, not 1-{ACTIONS_ELEMENTS_MAX}")
        for number, element in enumerate(elements):
            _check_element(problems, f"{where} element {number}", element)
    elif kind == "input":
        _check_text_object(problems, f"{where} label", block.get("label"), INPUT_LABEL_MAX, True)
        _check_text_object(problems, f"{where} hint", block.get("hint"), INPUT_HINT_MAX)
        _check_element(problems, f"{where} element", block.get("element", {}))
    elif kind != "divider":
        problems.append(f"{where}: a block type these checks do not know")


def _check_element(problems: list[str], where: str, element: Mapping[str, Any]) -> None:
    _check_length(problems, f"{where} action_id", element.get("action_id"), ACTION_ID_MAX)
    kind = element.get("type")
    if kind == "button":
        _check_text_object(problems, f"{where} text", element.get("text"), BUTTON_TEXT_MAX, True)
        _check_length(problems, f"{where} value", element.get("value"), ACTION_VALUE_MAX)
        _check_length(problems, f"{where} url", element.get("url"), URL_MAX)
        confirm = element.get("confirm")
        if confirm is not None:
            for key, limit in (
                ("title", CONFIRM_TITLE_MAX),
                ("text", CONFIRM_TEXT_MAX),
                ("confirm", CONFIRM_BUTTON_MAX),
                ("deny", CONFIRM_BUTTON_MAX),
            ):
                _check_text_object(
                    problems, f"{where} confirm {key}", confirm.get(key), limit, True
                )
    elif kind == "plain_text_input":
        _check_text_object(
            problems, f"{where} placeholder", element.get("placeholder"), INPUT_PLACEHOLDER_MAX
        )
        max_length = element.get("max_length", INPUT_VALUE_MAX)
        if max_length > INPUT_VALUE_MAX:
            problems.append(f"{where}: max_length {max_length}, more than {INPUT_VALUE_MAX}")
        _check_length(problems, f"{where} initial_value", element.get("initial_value"), max_length)
    else:
        problems.append(f"{where}: an element type these checks do not know ({kind})")


def _check_text_object(
    problems: list[str], where: str, obj: Any, limit: int, required: bool = False
) -> None:
    if obj is None:
        if required:
            problems.append(f"{where}: missing")
        return
    if not isinstance(obj, Mapping) or obj.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"{where}: not a text object")
        return
    _check_text(problems, where, obj.get("text"), limit)


def _check_text(problems: list[str], where: str, text: Any, limit: int) -> None:
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: empty (Slack refuses blank text)")
        return
    _check_length(problems, where, text, limit)


def _check_length(problems: list[str], where: str, value: Any, limit: int) -> None:
    if value is not None and len(str(value)) > limit:
        problems.append(f"{where}: {len(str(value))} characters, more than {limit}")


def _check_round_trip(problems: list[str], where: str, block: Mapping[str, Any]) -> None:
    """slack_sdk's model drops keys it does not know: a lossy round trip is a typo."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block

    try:
        parsed = Block.parse(dict(block))
        if parsed is None:
            problems.append(f"{where}: slack_sdk does not know this block")
        elif parsed.to_dict() != block:
            problems.append(f"{where}: does not survive slack_sdk's round trip")
    except (SlackObjectFormationError, *_SDK_REFUSALS) as error:
        problems.append(f"{where}: refused by slack_sdk: {error}")
