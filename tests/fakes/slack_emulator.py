"""A local Slack for end-to-end tests: the Web API over HTTP and Socket Mode over a WebSocket.

The real `AsyncWebClient(base_url=emulator.api_url, retry_handlers=[...])`, the real bolt
`AsyncApp` and the real `AsyncSocketModeHandler` (slack_sdk's aiohttp Socket Mode client) talk
to it over sockets on 127.0.0.1, so tests exercise the SDK's request encoding, error mapping,
retry handlers and the Socket Mode ack protocol instead of our guess of them (DESIGN.md,
"Testing contract"). Tests drive the user's side (`slash_command`, `block_action`,
`view_submission`, `message_event`) and assert on what the bot did (`calls`, `messages`,
`ephemerals`, `views`, `responses`, `acks`), waiting with `wait_for` instead of sleeping.

Wire facts followed (slack_sdk 3.47 and slack_bolt 1.30 sources, Slack's docs and real
payload captures in the SDKs' own tests):
- The SDK sends chat.* and views.* as JSON, GET methods (conversations.replies,
  chat.getPermalink) and `params=` POSTs (auth.test, apps.connections.open, files.*) as query
  strings, and the token as `Authorization: Bearer`; Slack also accepts form bodies and a
  `token` parameter, so all of these are read and merged.
- Errors are HTTP 200 `{"ok": false, "error": ...}` (invalid blocks add `errors` and
  `response_metadata.messages`); rate limits are HTTP 429 with `Retry-After` and
  `{"ok": false, "error": "ratelimited"}`; unknown methods answer `unknown_method`.
- Rate limits, enforced by default at Slack's published rates: `chat.postMessage` about one
  message per second per channel, `chat.update` (Tier 3) about 50 per minute per workspace,
  each allowing a short burst (Slack publishes no burst size; `RATE_LIMITS` says ours). A
  call over its limit answers 429 with `Retry-After` in whole seconds, as Slack does, and
  is not served; `rate_limited` counts those answers per method.
- Socket Mode: `apps.connections.open` (app-level token) returns a WebSocket URL; on connect
  the server sends `hello`; envelopes are `{"envelope_id", "type", "payload",
  "accepts_response_payload"}` (events_api adds `retry_attempt`/`retry_reason`); the client
  acks with `{"envelope_id", "payload"?}`; `{"type": "disconnect"}` makes it reconnect.
  Pings are answered by aiohttp's autoping, which is what the SDK's ping/pong check needs.
- A message an app posts with a bot token comes back as a `message` event with `bot_id`,
  `user` (the bot user), `app_id` and `bot_profile` and no subtype; only classic bots and
  integrations (`bot_id` without `user`) carry `subtype: "bot_message"`.

Deliberate simplifications: one workspace; channel ids are the only channel identity (no
names, no DMs opened by user id); unacked envelopes are not redelivered; chat.update sends no
`message_changed` event; files shared with completeUploadExternal are recorded but post no
message; response URLs are not limited to five uses. Stricter than Slack on purpose: a
`thread_ts` that names no message in the channel is refused with `thread_not_found` instead of
creating an orphan reply, so a wrong ts fails the test that made it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.fakes.local_server import LocalServer

JSON: TypeAlias = dict[str, Any]
T = TypeVar("T")

# The workspace and the bot's identity, as auth.test reports them.
TEAM_ID = "T1"
TEAM_DOMAIN = "emulator"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A1"
BOT_NAME = "incident-responder"
VERIFICATION_TOKEN = "verification-token"
DEFAULT_USER = "U1"
DEFAULT_CHANNELS = ("C1", "C2")

# Slack shows the user an error when an envelope is not acked within 3 s.
ACK_DEADLINE_SECONDS = 3.0
# A trigger_id can open a modal once, within 3 s of the interaction that issued it.
TRIGGER_TTL_SECONDS = 3.0
MAX_TEXT_CHARS = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
# Fields the SDK (or a form-encoded caller) may send as JSON strings.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "files")
_DEFAULT_ERRORS = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}
_BOT_PROFILE: JSON = {
    "id": BOT_ID,
    "app_id": APP_ID,
    "name": BOT_NAME,
    "deleted": False,
    "team_id": TEAM_ID,
}
_HELLO_DEBUG_INFO: JSON = {"host": "applink-emulator", "approximate_connection_time": 18060}
# The first ts handed out, in microseconds: "1700000000.000100", then +100 µs each.
_FIRST_TS_MICROS = 1_700_000_000_000_100
# wait_for re-checks at least this often, for conditions on state outside the emulator.
_POLL_SECONDS = 0.05
_SHUTDOWN_GRACE_SECONDS = 0.5
# Server-side WebSocket close handshake limit, so stop() never hangs on a silent client.
_WS_CLOSE_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class RateLimit:
    """One method's limit: a token bucket of `burst` calls refilled at `per_second`, per
    channel (`chat.postMessage`) or for the whole workspace."""

    per_second: float
    burst: int
    per_channel: bool = False


RATE_LIMITS: Mapping[str, RateLimit] = {
    "chat.postMessage": RateLimit(per_second=1.0, burst=5, per_channel=True),
    "chat.update": RateLimit(per_second=50 / 60, burst=10),
}


def scaled_limits(factor: float, *, burst: int | None = None) -> dict[str, RateLimit]:
    """Slack's limits `factor` times faster (and with another burst), for a test that must
    run a storm through them in seconds rather than minutes."""
    return {
        method: RateLimit(limit.per_second * factor, burst or limit.burst, limit.per_channel)
        for method, limit in RATE_LIMITS.items()
    }


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as it arrived and what the emulator answered."""

    method: str
    params: JSON
    """Query string and body merged; JSON-string fields (blocks, view, ...) decoded."""
    headers: dict[str, str]
    """Header names lower-cased."""
    time: float
    """`time.monotonic()` on arrival."""
    status: int
    response: JSON

    @property
    def ok(self) -> bool:
        """True when the SDK would have returned a response rather than raised."""
        return self.status == 200 and self.response.get("ok") is True


@dataclass(frozen=True)
class MessageVersion:
    """What a message said at one point: the post, then one version per edit."""

    text: str
    blocks: list[JSON]
    attachments: list[JSON]
    ts: str
    """The post's ts for the first version, the edit's ts (`edited.ts`) after that."""
    via: str
    """Who made it: "chat.postMessage", "chat.update", "response_url" or "test"."""


@dataclass(eq=False)
class Message:
    """A channel message with its edit history, as the emulator's store holds it."""

    channel: str
    ts: str
    user: str | None
    bot_id: str | None
    thread_ts: str | None
    """The root's ts for a reply; None for a top-level message."""
    subtype: str | None = None
    metadata: JSON | None = None
    versions: list[MessageVersion] = field(default_factory=list)
    deleted: bool = False

    @property
    def text(self) -> str:
        return self.versions[-1].text

    @property
    def blocks(self) -> list[JSON]:
        return self.versions[-1].blocks

    @property
    def attachments(self) -> list[JSON]:
        return self.versions[-1].attachments

    @property
    def updates(self) -> int:
        """How many times it was edited (chat.update or a replacing response_url post)."""
        return len(self.versions) - 1

    @property
    def by_bot(self) -> bool:
        """Posted by the bot under test."""
        return self.bot_id == BOT_ID


@dataclass(frozen=True)
class Ephemeral:
    """A message only `user` saw: chat.postEphemeral or a non-public response_url post."""

    channel: str | None
    user: str
    text: str
    blocks: list[JSON]
    thread_ts: str | None
    message_ts: str
    via: str


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url handed out in a slash command or block action."""

    url: str
    body: JSON
    time: float


@dataclass
class UploadedFile:
    """A file uploaded through files.getUploadURLExternal, the upload URL and completion."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None


@dataclass(frozen=True)
class Ack:
    """The client's acknowledgement of one envelope."""

    envelope_id: str
    type: str
    payload: JSON | None
    """The ack's response payload (slash command reply, view `response_action`), if any."""
    latency: float
    """Seconds from sending the envelope to receiving the ack; Slack allows 3."""


@dataclass(frozen=True)
class Delivery:
    """An envelope the emulator sent, and its ack when the driver waited for one."""

    envelope_id: str
    type: str
    payload: JSON
    ack: Ack | None


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None
    remaining: int


@dataclass(frozen=True)
class _ResponseTarget:
    """Where a response_url post lands: the conversation, the user, the clicked message."""

    channel: str | None
    user: str
    message_ts: str | None


@dataclass(frozen=True)
class _Pending:
    future: asyncio.Future[Ack]
    type: str
    sent_at: float
    accepts_response_payload: bool


class _ApiError(Exception):
    """A Slack error answer: HTTP 200 with `{"ok": false, "error": ...}` plus details."""

    def __init__(self, error: str, **details: Any) -> None:
        super().__init__(error)
        self.error = error
        self.details = details

    def body(self) -> JSON:
        return {"ok": False, "error": self.error, **self.details}


_Handler: TypeAlias = Callable[[JSON], Awaitable[JSON]]
_Outcome: TypeAlias = tuple[int, JSON, dict[str, str]]


class SlackEmulator(LocalServer):
    """Slack's Web API, response URLs, file uploads and Socket Mode on one free local port.

    Use `async with SlackEmulator() as emulator:` and give the SDK `emulator.api_url`. State is
    public and append-only so tests assert on it directly: `calls`, `messages(channel)`,
    `ephemerals`, `views`, `responses`, `files`, `envelopes`, `acks`, `protocol_errors`.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        channels: Iterable[str] = DEFAULT_CHANNELS,
        not_member: Iterable[str] = (),
        echo_bot_messages: bool = True,
        ack_deadline: float = ACK_DEADLINE_SECONDS,
        trigger_ttl: float = TRIGGER_TTL_SECONDS,
        connect_timeout: float = 5.0,
        rate_limits: Mapping[str, RateLimit] = RATE_LIMITS,
    ) -> None:
        """Configure the workspace.

        Args:
            channels: conversation ids that exist and the bot is a member of; any other id
                answers `channel_not_found`.
            not_member: ids that exist but the bot was never invited to: posting there
                answers `not_in_channel`.
            echo_bot_messages: deliver the bot's own posts back to it as `message` events,
                as real Slack does, so the app must ignore its own messages.
            ack_deadline: how long the interaction drivers wait for an ack.
            trigger_ttl: how long a trigger_id stays valid for views.open.
            connect_timeout: how long a driver waits for a Socket Mode connection.
            rate_limits: the limit of each method that has one; `{}` lifts them all.
        """
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token
        self.non_member_channels: set[str] = set(not_member)
        self.channels: set[str] = set(channels) | self.non_member_channels
        self.echo_bot_messages = echo_bot_messages
        self.ack_deadline = ack_deadline
        self.trigger_ttl = trigger_ttl
        self.connect_timeout = connect_timeout
        self.rate_limits = dict(rate_limits)
        self.down = False

        self.calls: list[ApiCall] = []
        self.ephemerals: list[Ephemeral] = []
        self.views: list[JSON] = []
        self.responses: list[ResponsePost] = []
        self.files: list[UploadedFile] = []
        self.envelopes: list[JSON] = []
        self.acks: list[Ack] = []
        self.protocol_errors: list[str] = []
        self.connections_opened = 0

        self._messages: dict[str, list[Message]] = {}
        self._by_ts: dict[str, Message] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._tickets: set[str] = set()
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._uploads: dict[str, UploadedFile] = {}
        self._pending: dict[str, _Pending] = {}
        self._connections: list[web.WebSocketResponse] = []
        self._changed = asyncio.Event()
        self._ts_micros = _FIRST_TS_MICROS
        self._serial = 0
        self._methods: dict[str, _Handler] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_url(self) -> str:
        """The Web API base URL for `AsyncWebClient(base_url=...)`; ends with `/api/`."""
        return f"{self.url}/api/"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/link/", self._handle_link)
        app.router.add_post(
            "/{kind:commands|actions}/{team}/{hook}/{secret}", self._handle_response
        )
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        return app

    async def before_stop(self) -> None:
        """Close Socket Mode connections and waiters before the server goes.

        Close the app's handler first (`close_async()`): a still-connected client would see
        the close and try to reconnect to a server that is gone.
        """
        for ws in list(self._connections):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopped")
        for pending in self._pending.values():
            pending.future.cancel()

    # ------------------------------------------------------------------ configuration

    def add_channel(self, channel: str, *, member: bool = True) -> None:
        """Make a conversation exist, with or without the bot in it."""
        self.channels.add(channel)
        if member:
            self.non_member_channels.discard(channel)
        else:
            self.non_member_channels.add(channel)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int = 1,
        count: int = 1,
    ) -> None:
        """Answer the next `count` calls to `method` with an error instead of serving them.

        `status=429` sends `Retry-After: retry_after` and `ratelimited`; 500 and 503 send
        `internal_error` / `service_unavailable`; `error=` alone is Slack's usual HTTP 200
        `{"ok": false, "error": error}`. Faults queue in order, each for `count` calls.
        """
        chosen = error if error is not None else _DEFAULT_ERRORS.get(status)
        if chosen is None:
            raise ValueError(f"fail_next({method!r}) needs error= for status {status}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = _Fault(status, chosen, retry_after if status == 429 else None, count)
        self._faults.setdefault(method, deque()).append(fault)

    def set_down(self, down: bool = True) -> None:
        """While down, every HTTP request (Web API, response URLs, uploads) answers 503."""
        self.down = down

    # ------------------------------------------------------------------ recorded state

    @property
    def rate_limited(self) -> Counter[str]:
        """How many calls of each method were answered 429, whether over a limit or injected
        with `fail_next`."""
        return Counter(call.method for call in self.calls if call.status == 429)

    def calls_to(self, method: str) -> list[ApiCall]:
        """The calls to one Web API method, retries and failures included, in order."""
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[Message]:
        """Every message in a channel in posting order, thread replies and deleted included."""
        return list(self._messages.get(channel, []))

    def message(self, ts: str) -> Message:
        """The message with this ts (ts values are unique across channels here)."""
        return self._by_ts[ts]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """A thread's root followed by its live replies, as conversations.replies sees it."""
        root = self._root(channel, ts)
        if root is None:
            raise ValueError(f"no message {ts} in {channel}")
        return [root, *self._replies(root)]

    @property
    def pending_acks(self) -> list[str]:
        """Envelope ids sent but not acked yet."""
        return list(self._pending)

    def new_trigger_id(self) -> str:
        """A trigger_id as an interaction payload carries it, for tests calling views.open."""
        trigger_id = f"{self._next_serial()}.{TEAM_ID[1:]}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = time.monotonic()
        return trigger_id

    def add_message(
        self,
        channel: str,
        text: str = "",
        *,
        user: str | None = None,
        bot_id: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
    ) -> Message:
        """Put a message in the store without delivering an event (history to read back).

        `user` alone is a person; `bot_id` alone is a classic bot or integration (alerting
        tools, incoming webhooks: `subtype: "bot_message"`); both is another app's bot user.
        """
        if user is None and bot_id is None:
            raise ValueError("a message needs a user, a bot_id or both")
        if channel not in self.channels:
            raise ValueError(f"unknown channel {channel!r}: add it with add_channel()")
        root = None if thread_ts is None else self._root(channel, thread_ts)
        if thread_ts is not None and root is None:
            raise ValueError(f"no message {thread_ts} in {channel} to reply to")
        return self._store(
            channel,
            text=text,
            blocks=blocks or [],
            attachments=attachments or [],
            user=user,
            bot_id=bot_id,
            thread_ts=None if root is None else root.ts,
            subtype="bot_message" if user is None else None,
            via="test",
        )

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait until `predicate()` is truthy and return its value; TimeoutError otherwise.

        Re-checks on every recorded change and every 50 ms, so tests never sleep blindly.
        """
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = ", ".join(
                    f"{c.method}->{c.response.get('error', 'ok')}" for c in self.calls[-10:]
                )
                raise TimeoutError(f"condition not met within {timeout} s; last calls: [{recent}]")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, _POLL_SECONDS))

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a Socket Mode client is connected (hello sent)."""
        await self._live_connection(timeout)

    async def wait_ack(self, envelope_id: str, timeout: float | None = None) -> Ack:
        """The ack for an envelope, waiting up to `timeout` (default: the ack deadline)."""
        for ack in self.acks:
            if ack.envelope_id == envelope_id:
                return ack
        pending = self._pending.get(envelope_id)
        if pending is None:
            raise KeyError(f"no envelope {envelope_id!r} was sent")
        limit = self.ack_deadline if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), limit)
        except TimeoutError:
            raise TimeoutError(
                f"{pending.type} envelope {envelope_id} was not acked within {limit} s"
            ) from None

    # ------------------------------------------------------------------ user-side drivers

    async def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str = DEFAULT_USER,
        channel_id: str = DEFAULT_CHANNELS[0],
        expect_ack: bool = True,
    ) -> Delivery:
        """A user runs `command text` in a channel: a real `slash_commands` envelope.

        Like every driver, with `expect_ack` it waits for the ack and raises TimeoutError if
        none comes within the ack deadline; `expect_ack=False` returns once it is sent.
        """
        target = _ResponseTarget(channel_id, user_id, None)
        payload: JSON = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_id.lower(),
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": self._new_response_url("commands", target),
            "trigger_id": self.new_trigger_id(),
        }
        return await self._deliver("slash_commands", payload, True, expect_ack)

    async def block_action(
        self,
        action_id: str,
        *,
        value: str | None = None,
        user_id: str = DEFAULT_USER,
        channel_id: str | None = None,
        message_ts: str | None = None,
        block_id: str | None = None,
        selected_option: JSON | None = None,
        expect_ack: bool = True,
    ) -> Delivery:
        """A user clicks an element in a message: a real `block_actions` payload.

        With `message_ts` of a stored message (or ephemeral) the element must exist in its
        blocks; its block_id, type, text and value are taken from there unless given, and the
        payload carries the message as Slack renders it. Without `message_ts` the click comes
        from an ephemeral message the emulator never saw, so `channel_id` and `value` are
        needed. `selected_option` makes it a select menu choice instead of a button.
        """
        message = self._by_ts.get(message_ts) if message_ts is not None else None
        ephemeral = next((e for e in self.ephemerals if e.message_ts == message_ts), None)
        if message_ts is not None and message is None and ephemeral is None:
            raise ValueError(f"no message or ephemeral with ts {message_ts}")
        blocks: list[JSON] = []
        channel: str | None
        if message is not None:
            channel, blocks = message.channel, message.blocks
        elif ephemeral is not None:
            channel, blocks = ephemeral.channel or channel_id, ephemeral.blocks
        else:
            channel = channel_id
        if channel is None:
            raise ValueError("block_action needs channel_id when there is no message_ts")
        found = _find_element(blocks, action_id)
        if message_ts is not None and found is None:
            raise ValueError(f"message {message_ts} has no element with action_id {action_id!r}")
        found_block_id, element = found if found is not None else ("actions", {})
        action: JSON = {
            "action_id": action_id,
            "block_id": block_id or found_block_id,
            "type": element.get("type", "static_select" if selected_option else "button"),
            "action_ts": self._next_ts(),
        }
        if "text" in element:
            action["text"] = element["text"]
        if selected_option is not None:
            action["selected_option"] = selected_option
        elif value is not None or "value" in element:
            action["value"] = value if value is not None else element["value"]
        ts = message_ts if message_ts is not None else self._next_ts()
        payload: JSON = {
            "type": "block_actions",
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": message is None,
            },
            "trigger_id": self.new_trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel.lower()},
            "state": {"values": {}},
            "response_url": self._new_response_url(
                "actions", _ResponseTarget(channel, user_id, message_ts if message else None)
            ),
            "actions": [action],
        }
        if message is not None:
            payload["message"] = self._render(message)
        return await self._deliver("interactive", payload, False, expect_ack)

    async def view_submission(
        self,
        callback_id: str,
        *,
        values: Mapping[str, Mapping[str, JSON]],
        private_metadata: str | None = None,
        user_id: str = DEFAULT_USER,
        view_id: str | None = None,
        expect_ack: bool = True,
    ) -> Delivery:
        """A user submits a modal: a real `view_submission` payload.

        The view is the one opened with `view_id`, else the last one opened with this
        callback_id, else a minimal modal; `values` becomes `view.state.values`
        (`{block_id: {action_id: {"type": ..., "value": ...}}}`).
        """
        base = self._opened_view(view_id, callback_id)
        view = dict(base) if base is not None else self._new_view({"type": "modal"})
        view["callback_id"] = callback_id
        view["state"] = {"values": {block: dict(actions) for block, actions in values.items()}}
        if private_metadata is not None:
            view["private_metadata"] = private_metadata
        payload: JSON = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self.new_trigger_id(),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return await self._deliver("interactive", payload, True, expect_ack)

    async def message_event(
        self,
        channel: str,
        text: str = "",
        *,
        user: str | None = None,
        bot_id: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        expect_ack: bool = True,
    ) -> Delivery:
        """Someone posts a message: it is stored (conversations.replies sees it) and delivered
        as an `events_api` envelope wrapping an `event_callback` with a `message` event.
        See `add_message` for what `user` and `bot_id` mean."""
        message = self.add_message(
            channel,
            text,
            user=user,
            bot_id=bot_id,
            thread_ts=thread_ts,
            blocks=blocks,
            attachments=attachments,
        )
        payload = self._event_callback(self._render(message, as_event=True))
        return await self._deliver("events_api", payload, False, expect_ack)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask connected clients to reconnect, as Slack does every few hours."""
        for ws in list(self._connections):
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {}})

    # ------------------------------------------------------------------ HTTP: Web API

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        headers = {name.lower(): value for name, value in request.headers.items()}
        params: JSON = {}
        try:
            params = await _read_params(request)
            status, body, extra_headers = await self._answer(method, params, headers)
        except _ApiError as error:
            status, body, extra_headers = 200, error.body(), {}
        self.calls.append(ApiCall(method, params, headers, time.monotonic(), status, body))
        self._notify()
        return web.json_response(body, status=status, headers=extra_headers)

    async def _answer(self, method: str, params: JSON, headers: dict[str, str]) -> _Outcome:
        if self.down:
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        fault = self._take_fault(method)
        if fault is not None:
            retry = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return fault.status, {"ok": False, "error": fault.error}, retry
        self._check_token(method, _token(headers, params))
        handler = self._methods.get(method)
        if handler is None:
            raise _ApiError("unknown_method", req_method=method)
        wait = self._over_limit(method, params)
        if wait is not None:
            retry_after = str(max(1, math.ceil(wait)))
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry_after}
        return 200, {"ok": True, **await handler(params)}, {}

    def _over_limit(self, method: str, params: JSON) -> float | None:
        """Take one call from the method's bucket; None when it may go, else the seconds
        until it may."""
        limit = self.rate_limits.get(method)
        if limit is None:
            return None
        scope = str(params.get("channel", "")) if limit.per_channel else ""
        now = time.monotonic()
        bucket = self._buckets.setdefault((method, scope), _Bucket(float(limit.burst), now))
        bucket.tokens = min(
            float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.per_second
        )
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / limit.per_second

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.popleft()
        return fault

    def _check_token(self, method: str, token: str | None) -> None:
        """Bot methods need the bot token; apps.connections.open needs the app token."""
        if method == "apps.connections.open":
            expected, other = self.app_token, self.bot_token
        else:
            expected, other = self.bot_token, self.app_token
        if not token:
            raise _ApiError("not_authed")
        if token == other:
            raise _ApiError("not_allowed_token_type")
        if token != expected:
            raise _ApiError("invalid_auth")

    async def _auth_test(self, params: JSON) -> JSON:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Emulator",
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    async def _apps_connections_open(self, params: JSON) -> JSON:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        ws_url = self.url.replace("http://", "ws://", 1)
        return {"url": f"{ws_url}/link/?ticket={ticket}&app_id={APP_ID}"}

    async def _chat_post_message(self, params: JSON) -> JSON:
        channel = self._channel(params)
        text, blocks, attachments = _content(params)
        thread_ts = self._thread_root(channel, params.get("thread_ts"))
        message = self._store(
            channel,
            text=text,
            blocks=blocks,
            attachments=attachments,
            user=BOT_USER_ID,
            bot_id=BOT_ID,
            thread_ts=thread_ts,
            metadata=params.get("metadata"),
            via="chat.postMessage",
        )
        await self._echo(message)
        return {"channel": channel, "ts": message.ts, "message": self._render(message)}

    async def _chat_update(self, params: JSON) -> JSON:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"), missing="message_not_found")
        if not message.by_bot:
            raise _ApiError("cant_update_message")
        text, blocks, attachments = _content(params, keep=message.versions[-1])
        edit = MessageVersion(text, blocks, attachments, self._next_ts(), "chat.update")
        message.versions.append(edit)
        self._notify()
        return {
            "channel": channel,
            "ts": message.ts,
            "text": text,
            "message": self._render(message),
        }

    async def _chat_post_ephemeral(self, params: JSON) -> JSON:
        channel = self._channel(params)
        user = params.get("user")
        if not isinstance(user, str) or not user:
            raise _ApiError("user_not_in_channel")
        text, blocks, _ = _content(params)
        thread_ts = self._thread_root(channel, params.get("thread_ts"))
        ts = self._next_ts()
        self.ephemerals.append(
            Ephemeral(channel, user, text, blocks, thread_ts, ts, "chat.postEphemeral")
        )
        self._notify()
        return {"message_ts": ts}

    async def _chat_get_permalink(self, params: JSON) -> JSON:
        channel = self._channel(params, need_member=False)
        message = self._find(channel, params.get("message_ts"), missing="message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{message.ts.replace('.', '')}"
        if message.thread_ts is not None:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    async def _views_open(self, params: JSON) -> JSON:
        self._redeem_trigger(params.get("trigger_id"))
        view = params.get("view")
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments")
        blocks = _validated_blocks(view.get("blocks", []), MAX_VIEW_BLOCKS)
        try:
            View(**view).validate_json()
        except (SlackObjectFormationError, TypeError) as error:
            raise _ApiError(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {error}"]}
            ) from None
        opened = self._new_view({**view, "blocks": blocks})
        self.views.append(opened)
        self._notify()
        return {"view": opened}

    async def _conversations_info(self, params: JSON) -> JSON:
        """Whether the channel exists and the bot is in it, as `incident-bot doctor` asks."""
        channel = self._channel(params, need_member=False)
        return {
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_member": channel not in self.non_member_channels,
            }
        }

    async def _conversations_replies(self, params: JSON) -> JSON:
        channel = self._channel(params)
        root = self._root(channel, params.get("ts"))
        if root is None:
            raise _ApiError("thread_not_found")
        thread = [root, *self._replies(root)]
        try:
            limit = int(params.get("limit", 1000))
            offset = int(base64.b64decode(params["cursor"])) if params.get("cursor") else 0
        except ValueError:
            raise _ApiError("invalid_cursor") from None
        page = thread[offset : offset + limit]
        more = offset + limit < len(thread)
        cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else ""
        return {
            "messages": [self._render(message) for message in page],
            "has_more": more,
            "response_metadata": {"next_cursor": cursor},
        }

    async def _conversations_history(self, params: JSON) -> JSON:
        """A channel's top-level messages, newest first, from `oldest` on; message metadata
        only with `include_all_metadata`, as Slack does."""
        channel = self._channel(params)
        try:
            limit = int(params.get("limit", 100))
            oldest = float(params.get("oldest", 0))
            offset = int(base64.b64decode(params["cursor"])) if params.get("cursor") else 0
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        metadata = str(params.get("include_all_metadata", "")).lower() in ("true", "1")
        found = [
            m
            for m in reversed(self._messages.get(channel, []))
            if m.thread_ts is None and not m.deleted and float(m.ts) >= oldest
        ]
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else ""
        rendered = []
        for message in page:
            out = self._render(message)
            if not metadata:
                out.pop("metadata", None)
            rendered.append(out)
        return {
            "messages": rendered,
            "has_more": more,
            "response_metadata": {"next_cursor": cursor},
        }

    async def _files_get_upload_url_external(self, params: JSON) -> JSON:
        filename, length = params.get("filename"), params.get("length")
        if not filename or length is None:
            raise _ApiError("invalid_arguments")
        file_id = f"F{self._next_serial():09d}"
        self._uploads[file_id] = UploadedFile(file_id, str(filename), int(length))
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    async def _files_complete_upload_external(self, params: JSON) -> JSON:
        items = params.get("files")
        if not isinstance(items, list) or not items:
            raise _ApiError("invalid_arguments")
        channel = self._channel(params, key="channel_id") if params.get("channel_id") else None
        thread_ts = self._thread_root(channel, params.get("thread_ts")) if channel else None
        completed = []
        for item in items:
            upload = self._uploads.get(item.get("id", "")) if isinstance(item, dict) else None
            if upload is None or upload.content is None:
                raise _ApiError("file_not_found")
            upload.title = item.get("title") or upload.filename
            upload.channel, upload.thread_ts = channel, thread_ts
            upload.initial_comment = params.get("initial_comment")
            completed.append(upload)
        self.files.extend(completed)
        self._notify()
        return {"files": [{"id": upload.id, "title": upload.title} for upload in completed]}

    # ------------------------------------------------------------------ HTTP: other endpoints

    async def _handle_response(self, request: web.Request) -> web.Response:
        """A response_url post: recorded, then shown the way Slack would show it."""
        if self.down:
            return web.Response(status=503, text="service_unavailable")
        target = self._response_targets.get(request.path)
        if target is None:
            return web.Response(status=404, text="expired_url")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(ResponsePost(str(request.url), body, time.monotonic()))
        try:
            await self._apply_response(target, body)
        except _ApiError as error:
            return web.Response(status=400, text=error.error)
        finally:
            self._notify()
        return web.Response(text="ok")

    async def _apply_response(self, target: _ResponseTarget, body: JSON) -> None:
        original = self._by_ts.get(target.message_ts) if target.message_ts else None
        if body.get("delete_original"):
            if original is not None:
                original.deleted = True
            return
        text, blocks, attachments = _content(body)
        channel = target.channel
        if body.get("replace_original") and original is not None:
            edit = MessageVersion(text, blocks, attachments, self._next_ts(), "response_url")
            original.versions.append(edit)
        elif body.get("response_type") == "in_channel" and channel in self.channels:
            assert channel is not None
            message = self._store(
                channel,
                text=text,
                blocks=blocks,
                attachments=attachments,
                user=BOT_USER_ID,
                bot_id=BOT_ID,
                thread_ts=self._thread_root(channel, body.get("thread_ts")),
                via="response_url",
            )
            await self._echo(message)
        else:
            thread_ts = body.get("thread_ts")
            self.ephemerals.append(
                Ephemeral(
                    target.channel,
                    target.user,
                    text,
                    blocks,
                    thread_ts if isinstance(thread_ts, str) else None,
                    self._next_ts(),
                    "response_url",
                )
            )

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """Step 2 of files_upload_v2: the bytes, answered in text/plain like files.slack.com."""
        if self.down:
            return web.Response(status=503, text="service_unavailable")
        upload = self._uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="file_not_found")
        upload.content = await request.read()
        return web.Response(text=f"OK - {len(upload.content)}")

    # ------------------------------------------------------------------ Socket Mode

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(timeout=_WS_CLOSE_TIMEOUT_SECONDS)
        await ws.prepare(request)
        self._connections.append(ws)
        self.connections_opened += 1
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._connections),
                    "debug_info": _HELLO_DEBUG_INFO,
                    "connection_info": {"app_id": APP_ID},
                }
            )
            self._notify()
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_client_frame(frame.data)
                else:
                    self.protocol_errors.append(f"unexpected {frame.type.name} frame")
        finally:
            self._connections.remove(ws)
            self._notify()
        return ws

    def _on_client_frame(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            self.protocol_errors.append(f"non-JSON frame: {data[:200]!r}")
            return
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        pending = self._pending.pop(envelope_id, None) if isinstance(envelope_id, str) else None
        if pending is None or not isinstance(envelope_id, str):
            self.protocol_errors.append(f"ack for no pending envelope: {data[:200]!r}")
            return
        payload = frame.get("payload")
        if payload is not None and not pending.accepts_response_payload:
            self.protocol_errors.append(
                f"ack of {pending.type} envelope {envelope_id} carries a payload Slack ignores"
            )
        ack = Ack(envelope_id, pending.type, payload, time.monotonic() - pending.sent_at)
        self.acks.append(ack)
        pending.future.set_result(ack)
        self._notify()

    async def _live_connection(self, timeout: float | None = None) -> web.WebSocketResponse:
        def newest() -> web.WebSocketResponse | None:
            live = [ws for ws in self._connections if not ws.closed]
            return live[-1] if live else None

        limit = self.connect_timeout if timeout is None else timeout
        try:
            return await self.wait_for(newest, limit)
        except TimeoutError:
            raise TimeoutError(
                f"no Socket Mode connection within {limit} s: connect the handler "
                "(AsyncSocketModeHandler.connect_async) first"
            ) from None

    async def _send_envelope(
        self, ws: web.WebSocketResponse, type_: str, payload: JSON, accepts: bool
    ) -> str:
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type_,
            "accepts_response_payload": accepts,
        }
        if type_ == "events_api":
            envelope |= {"retry_attempt": 0, "retry_reason": ""}
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = _Pending(future, type_, time.monotonic(), accepts)
        self.envelopes.append(envelope)
        await ws.send_json(envelope)
        return envelope_id

    async def _deliver(
        self, type_: str, payload: JSON, accepts: bool, expect_ack: bool
    ) -> Delivery:
        ws = await self._live_connection()
        envelope_id = await self._send_envelope(ws, type_, payload, accepts)
        ack = await self.wait_ack(envelope_id) if expect_ack else None
        return Delivery(envelope_id, type_, payload, ack)

    async def _echo(self, message: Message) -> None:
        """Deliver the bot's own post back to it, as Slack does, when a client is connected."""
        live = [ws for ws in self._connections if not ws.closed]
        if self.echo_bot_messages and live:
            event = self._render(message, as_event=True)
            await self._send_envelope(live[-1], "events_api", self._event_callback(event), False)

    def _event_callback(self, event: JSON) -> JSON:
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{self._next_serial():08d}",
            "event_time": int(float(event["event_ts"])),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{event['type']}-{TEAM_ID}-{event['channel']}",
        }

    # ------------------------------------------------------------------ store helpers

    def _store(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[JSON],
        attachments: list[JSON],
        user: str | None,
        bot_id: str | None,
        thread_ts: str | None,
        via: str,
        subtype: str | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        ts = self._next_ts()
        message = Message(channel, ts, user, bot_id, thread_ts, subtype, metadata)
        message.versions.append(MessageVersion(text, blocks, attachments, ts, via))
        self._messages.setdefault(channel, []).append(message)
        self._by_ts[ts] = message
        self._notify()
        return message

    def _channel(self, params: JSON, *, key: str = "channel", need_member: bool = True) -> str:
        channel = params.get(key)
        if not isinstance(channel, str) or channel not in self.channels:
            raise _ApiError("channel_not_found")
        if need_member and channel in self.non_member_channels:
            raise _ApiError("not_in_channel")
        return channel

    def _find(self, channel: str, ts: object, *, missing: str) -> Message:
        message = self._by_ts.get(ts) if isinstance(ts, str) else None
        if message is None or message.channel != channel or message.deleted:
            raise _ApiError(missing)
        return message

    def _root(self, channel: str, ts: object) -> Message | None:
        """The thread root for a message's ts: Slack files a reply-to-a-reply under the root."""
        message = self._by_ts.get(ts) if isinstance(ts, str) else None
        if message is None or message.channel != channel or message.deleted:
            return None
        return self._by_ts[message.thread_ts] if message.thread_ts else message

    def _thread_root(self, channel: str, thread_ts: object) -> str | None:
        """The root ts a posted reply goes under; a ts naming no message is refused."""
        if thread_ts is None or thread_ts == "":
            return None
        root = self._root(channel, thread_ts)
        if root is None:
            raise _ApiError("thread_not_found")
        return root.ts

    def _replies(self, root: Message) -> list[Message]:
        return [
            m
            for m in self._messages.get(root.channel, [])
            if m.thread_ts == root.ts and not m.deleted
        ]

    def _render(self, message: Message, *, as_event: bool = False) -> JSON:
        """A message as Slack returns it from the Web API, or as a `message` event."""
        out: JSON = {"type": "message", "text": message.text, "ts": message.ts}
        if message.user is not None:
            out["user"] = message.user
            out["team"] = TEAM_ID
        if message.bot_id is not None:
            out["bot_id"] = message.bot_id
        if message.by_bot:
            out["app_id"] = APP_ID
            out["bot_profile"] = dict(_BOT_PROFILE)
        if message.subtype is not None:
            out["subtype"] = message.subtype
        if message.blocks:
            out["blocks"] = message.blocks
        if message.attachments:
            out["attachments"] = message.attachments
        if message.metadata is not None:
            out["metadata"] = message.metadata
        if message.thread_ts is not None:
            out["thread_ts"] = message.thread_ts
            parent = self._by_ts[message.thread_ts].user
            if parent is not None:
                out["parent_user_id"] = parent
        if as_event:
            out["channel"] = message.channel
            out["event_ts"] = message.ts
            out["channel_type"] = _channel_type(message.channel)
            if message.user is not None and message.bot_id is None:
                out["client_msg_id"] = str(uuid.uuid4())
            return out
        if message.updates:
            out["edited"] = {"user": message.bot_id or message.user, "ts": message.versions[-1].ts}
        replies = self._replies(message) if message.thread_ts is None else []
        if replies:
            users = list(dict.fromkeys(r.user or r.bot_id for r in replies))
            out |= {
                "thread_ts": message.ts,
                "reply_count": len(replies),
                "reply_users": users,
                "reply_users_count": len(users),
                "latest_reply": replies[-1].ts,
            }
        return out

    def _new_view(self, view: JSON) -> JSON:
        """A view as Slack returns it: the app's fields over Slack's defaults, with an id."""
        view_id = f"V{self._next_serial():09d}"
        return {
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "app_id": APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
            **view,
            "id": view_id,
            "root_view_id": view_id,
        }

    def _opened_view(self, view_id: str | None, callback_id: str) -> JSON | None:
        if view_id is not None:
            for view in self.views:
                if view["id"] == view_id:
                    return view
            raise ValueError(f"no view {view_id} was opened")
        matching = [view for view in self.views if view.get("callback_id") == callback_id]
        return matching[-1] if matching else None

    def _redeem_trigger(self, trigger_id: object) -> None:
        issued = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if issued is None:
            raise _ApiError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise _ApiError("exchanged_trigger_id")
        if time.monotonic() - issued > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        self._used_triggers.add(str(trigger_id))

    def _new_response_url(self, kind: str, target: _ResponseTarget) -> str:
        path = f"/{kind}/{TEAM_ID}/{self._next_serial()}/{secrets.token_urlsafe(12)}"
        self._response_targets[path] = target
        return f"{self.url}{path}"

    def _next_ts(self) -> str:
        """Monotonic unique ts values, "1700000000.000100" style, shared by all messages."""
        self._ts_micros += 100
        return f"{self._ts_micros // 1_000_000}.{self._ts_micros % 1_000_000:06d}"

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _notify(self) -> None:
        """Wake every wait_for: something was recorded."""
        self._changed.set()
        self._changed = asyncio.Event()


async def _read_params(request: web.Request) -> JSON:
    """Query string and body (JSON, form or multipart) merged, the way Slack reads them."""
    params: JSON = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError("invalid_json") from None
            if not isinstance(body, dict):
                raise _ApiError("invalid_json")
            params.update(body)
        else:
            form = await request.post()
            for name, value in form.items():
                params[name] = value if isinstance(value, str) else f"<file {name}>"
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(params[name])
    return params


def _token(headers: Mapping[str, str], params: JSON) -> str | None:
    authorization = headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ").strip()
    token = params.get("token")
    return token if isinstance(token, str) else None


def _content(
    params: JSON, *, keep: MessageVersion | None = None
) -> tuple[str, list[JSON], list[JSON]]:
    """A message's text, blocks and attachments, refused the way Slack refuses them.

    With `keep` (chat.update), whatever the request leaves out stays as it was, as in Slack.
    """
    text = str(params.get("text") or "") if keep is None or "text" in params else keep.text
    if "blocks" in params:
        blocks = _validated_blocks(params["blocks"], MAX_MESSAGE_BLOCKS)
    else:
        blocks = [] if keep is None else keep.blocks
    attachments = params.get("attachments", [] if keep is None else keep.attachments) or []
    if not isinstance(attachments, list):
        raise _ApiError("invalid_attachments")
    if not (text or blocks or attachments):
        raise _ApiError("no_text")
    if len(text) > MAX_TEXT_CHARS:
        raise _ApiError("msg_too_long")
    return text, blocks, attachments


def _validated_blocks(value: object, limit: int) -> list[JSON]:
    """Block Kit checked with slack_sdk's models (text limits, required fields, types)."""
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        raise _ApiError("invalid_blocks_format")
    problems = []
    if len(value) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(value):
        try:
            parsed = Block.parse(block)
            if parsed is None:
                problems.append(f"unsupported block type [json-pointer:/blocks/{index}]")
            else:
                parsed.validate_json()
        except SlackObjectFormationError as error:
            problems.append(f"{error} [json-pointer:/blocks/{index}]")
    if problems:
        raise _ApiError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {problem}" for problem in problems]},
        )
    return value


def _find_element(blocks: list[JSON], action_id: str) -> tuple[str, JSON] | None:
    """The interactive element with `action_id` and its block's id, if the blocks hold it."""
    for index, block in enumerate(blocks):
        elements = [block.get("accessory"), block.get("element"), *block.get("elements", [])]
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", f"block-{index}")), element
    return None


def _user(user_id: str) -> JSON:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID}


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")
