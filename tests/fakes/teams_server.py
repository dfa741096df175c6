"""A local fake of Teams incoming webhooks, for `notify.teams`.

Each name given to `url_for` is one Workflows webhook, with its own workflow id and its own
`sig` in the query, as real URLs carry them (`/workflows/<id>/triggers/manual/paths/invoke?
api-version=1&sp=...&sv=1.0&sig=...`), so that routing by severity posts to distinct URLs;
`legacy_url_for` gives an Office 365 connector URL (`/webhookb2/...`, its secret in the path),
which answers 200 with the body "1" instead of 202.

Every post is counted in `received`; an accepted one is kept in `posts[name]` (a name appears
there only once something was posted to it) and answered 202 with an `x-ms-workflow-run-id`.
Refusals use Logic Apps' error shape `{"error": {"code", "message"}}`: an unknown workflow is
a 404, a missing or wrong signature a 401, a body over Teams' 28 KB a 413. The card itself is
validated (type message, one Adaptive Card attachment, a known version, a non-empty body of
elements of known types with their required properties and valid enum values, known action
types, an http(s) URL on Action.OpenUrl) and refused with a 400 naming the problem. That is
stricter than Workflows, which accepts any JSON and fails later in the flow's run history,
out of the sender's sight: here a test sees it. `fail_next` answers the next posts (after the
signature check, like the real service's throttling and outages) with a status and body.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer

MAX_BODY = 28 * 1024
SIGNATURE = "s3cr3tSignature"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
ELEMENTS = {
    "TextBlock",
    "RichTextBlock",
    "FactSet",
    "Image",
    "ImageSet",
    "Container",
    "ColumnSet",
    "ActionSet",
    "Table",
}
ACTIONS = {
    "Action.OpenUrl",
    "Action.Submit",
    "Action.ShowCard",
    "Action.ToggleVisibility",
    "Action.Execute",
}
ENUMS = {
    "size": {"Default", "Small", "Medium", "Large", "ExtraLarge"},
    "weight": {"Default", "Lighter", "Bolder"},
    "color": {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"},
    "fontType": {"Default", "Monospace"},
}


@dataclass
class _Fault:
    status: int
    remaining: int
    body: str | None


@dataclass(frozen=True)
class _Route:
    name: str
    secret: str


def logic_apps_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class TeamsFake(LocalServer):
    """`async with TeamsFake() as teams:` then `TeamsWebhook().post(teams.url_for("ops"), card)`."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.received = 0
        self._workflows: dict[str, _Route] = {}
        self._connectors: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._runs = 0

    def url_for(self, name: str) -> str:
        """The Workflows webhook URL of route `name`, made on first use and stable after."""
        workflow = next((w for w, r in self._workflows.items() if r.name == name), None)
        if workflow is None:
            workflow = uuid.uuid4().hex
            self._workflows[workflow] = _Route(name, SIGNATURE + secrets.token_urlsafe(24))
        route = self._workflows[workflow]
        return (
            f"{self.url}/workflows/{workflow}/triggers/manual/paths/invoke?api-version=1"
            f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={route.secret}"
        )

    def legacy_url_for(self, name: str) -> str:
        """An Office 365 connector URL of route `name`: its secret is the path itself."""
        path = next((p for p, n in self._connectors.items() if n == name), None)
        if path is None:
            tenant, group = uuid.uuid4(), uuid.uuid4()
            path = f"{group}@{tenant}/IncomingWebhook/{uuid.uuid4().hex}/{uuid.uuid4()}"
            self._connectors[path] = name
        return f"{self.url}/webhookb2/{path}"

    def fail_next(self, status: int = 500, count: int = 1, body: str | None = None) -> None:
        """Answer the next `count` posts with `status` and `body` (a Logic Apps error body
        when None); a 200 with a body is how a legacy connector reports a failure."""
        self._faults.append(_Fault(status, count, body))

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/workflows/{workflow}/triggers/manual/paths/invoke", self._invoke)
        app.router.add_post("/webhookb2/{path:.+}", self._connector)
        return app

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        route = self._workflows.get(request.match_info["workflow"])
        if route is None:
            return logic_apps_error(
                404, "WorkflowNotFound", f"The workflow '{request.match_info['workflow']}' "
                "could not be found."
            )  # fmt: skip
        sig = request.query.get("sig")
        if sig is None:
            return logic_apps_error(
                401, "DirectApiAuthorizationRequired", "The request must be authenticated."
            )
        if sig != route.secret:
            return logic_apps_error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided authorization signature is not valid.",
            )
        refused = await self._refusal(request)
        if refused is not None:
            return refused
        self._runs += 1
        self.posts.setdefault(route.name, []).append(await request.json())
        run_id = f"08584{self._runs:016d}CU00"
        return web.Response(status=202, headers={"x-ms-workflow-run-id": run_id})

    async def _connector(self, request: web.Request) -> web.StreamResponse:
        self.received += 1
        name = self._connectors.get(request.match_info["path"])
        if name is None:
            return web.Response(status=404, text="Webhook not found")
        refused = await self._refusal(request)
        if refused is not None:
            return refused
        self.posts.setdefault(name, []).append(await request.json())
        return web.Response(status=200, text="1")

    async def _refusal(self, request: web.Request) -> web.StreamResponse | None:
        """An injected fault, or the reason the body is refused; None to accept it."""
        if self._faults:
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            if fault.body is not None:
                return web.Response(status=fault.status, text=fault.body)
            return logic_apps_error(fault.status, "Injected", f"Injected failure ({fault.status})")
        raw = await request.read()
        if len(raw) > MAX_BODY:
            return logic_apps_error(
                413, "RequestEntityTooLarge", f"The message is {len(raw)} bytes, over {MAX_BODY}."
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return logic_apps_error(400, "InvalidRequestContent", "The body is not valid JSON.")
        problem = message_problem(body)
        if problem:
            return logic_apps_error(400, "InvalidRequestContent", problem)
        return None


def message_problem(body: Any) -> str | None:
    """Why `body` is not a message carrying one valid Adaptive Card; None when it is."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return "the body must be an object of type 'message'"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return "exactly one attachment is expected"
    attachment = attachments[0]
    if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_CONTENT_TYPE:
        return f"the attachment's contentType must be {CARD_CONTENT_TYPE}"
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return "the attachment's content must be of type 'AdaptiveCard'"
    if card.get("version") not in VERSIONS:
        return f"unsupported card version {card.get('version')!r}"
    elements = card.get("body")
    if not isinstance(elements, list) or not elements:
        return "the card's body must be a non-empty list"
    actions = card.get("actions", [])
    if not isinstance(actions, list):
        return "the card's actions must be a list"
    return _elements_problem(elements) or _actions_problem(actions)


def _elements_problem(elements: list[Any]) -> str | None:
    for element in elements:
        if not isinstance(element, dict) or element.get("type") not in ELEMENTS:
            kind = element.get("type") if isinstance(element, dict) else element
            return f"unknown element type {kind!r}"
        for option, allowed in ENUMS.items():
            if option in element and element[option] not in allowed:
                shown = ", ".join(sorted(allowed))
                return f"{element['type']}.{option} {element[option]!r} is not one of {shown}"
        kind = element["type"]
        if kind == "TextBlock" and not isinstance(element.get("text"), str):
            return "a TextBlock needs a text string"
        if kind == "FactSet" and not _facts_valid(element.get("facts")):
            return "a FactSet needs a list of facts, each with a title and a value string"
        if kind == "Container":
            nested = element.get("items")
            if not isinstance(nested, list):
                return "a Container needs a list of items"
            problem = _elements_problem(nested)
            if problem:
                return problem
    return None


def _facts_valid(facts: Any) -> bool:
    return isinstance(facts, list) and all(
        isinstance(fact, dict)
        and isinstance(fact.get("title"), str)
        and isinstance(fact.get("value"), str)
        for fact in facts
    )


def _actions_problem(actions: list[Any]) -> str | None:
    for action in actions:
        if not isinstance(action, dict) or action.get("type") not in ACTIONS:
            kind = action.get("type") if isinstance(action, dict) else action
            return f"unknown action type {kind!r}"
        url = action.get("url")
        if action["type"] == "Action.OpenUrl" and not (
            isinstance(url, str) and url.startswith(("https://", "http://"))
        ):
            return "an Action.OpenUrl needs an http(s) url"
    return None
