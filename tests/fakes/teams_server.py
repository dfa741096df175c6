"""A local fake of Teams Workflows incoming webhooks: each named route is one webhook URL
(`url_for(name)`, with a `sig` in its query as the real ones carry). A post must be a message
with one Adaptive Card attachment whose elements are of known types and whose body stays
under Teams's 28 KB; accepted posts are kept per route and answered 202, as Workflows does.
`fail_next` injects errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer

MAX_BODY = 28 * 1024
_ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "RichTextBlock"}
SIGNATURE = "s3cr3tSignature"


class TeamsFake(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self._faults: list[int] = []

    def url_for(self, name: str) -> str:
        return (
            f"{self.url}/workflows/{name}/triggers/manual/paths/invoke"
            f"?api-version=1&sig={SIGNATURE}"
        )

    def fail_next(self, status: int = 500, count: int = 1) -> None:
        self._faults += [status] * count

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/workflows/{name}/triggers/manual/paths/invoke", self._invoke)
        return app

    async def _invoke(self, request: web.Request) -> web.Response:
        if request.query.get("sig") != SIGNATURE:
            return web.json_response({"error": {"code": "DirectApiAuthorizationRequired"}},
                                     status=401)  # fmt: skip
        if self._faults:
            return web.Response(status=self._faults.pop(0), text="injected")
        raw = await request.read()
        if len(raw) > MAX_BODY:
            return web.Response(status=413, text="Message size exceeds the limit")
        try:
            body = json.loads(raw)
        except ValueError:
            return web.Response(status=400, text="Body is not JSON")
        problem = _problem(body)
        if problem:
            return web.Response(status=400, text=problem)
        self.posts.setdefault(request.match_info["name"], []).append(body)
        return web.Response(status=202)


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("type") != "message":
        return "type must be 'message'"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return "exactly one attachment is expected"
    attachment = attachments[0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return "the attachment is not an Adaptive Card"
    card = attachment.get("content") or {}
    if card.get("type") != "AdaptiveCard" or not card.get("version"):
        return "content must be an AdaptiveCard with a version"
    elements = card.get("body")
    if not isinstance(elements, list) or not elements:
        return "the card has no body"
    for element in elements:
        if element.get("type") not in _ELEMENTS:
            return f"unknown element type {element.get('type')!r}"
        if element["type"] == "TextBlock" and not isinstance(element.get("text"), str):
            return "a TextBlock needs text"
    for action in card.get("actions", []):
        if action.get("type") != "Action.OpenUrl" or not str(action.get("url")).startswith("http"):
            return "only Action.OpenUrl with a URL is expected"
    return None
