"""A local fake of the Jira REST API v2 endpoints the `jira` library calls to create an issue.

The real `jira.JIRA` client (and so `notify.jira.JiraTickets`) is pointed at `fake.url`, so the
library's request building, Basic auth, retry loop and error parsing all run for real. Served:

- `POST /rest/api/2/issue`: validates the fields the way Jira answers (project, issue type,
  summary, priority, labels, configurable required fields), records them in `created`, and
  answers 201 `{"id", "key", "self"}` with keys `OPS-1`, `OPS-2`...
- `GET /rest/api/2/issue/{key}`: the created issue, as `create_issue(prefetch=True)` reloads it.
- `GET /rest/api/2/serverInfo`: what `JIRA(get_server_info=True)` fetches at construction.
- `POST /rest/api/2/issue/{key}/comment`: records the comment in `comments[key]`, answers 201.
- `GET /rest/api/2/issue/{key}/transitions`: the transitions open from the issue's status
  (`workflow` maps a status to `{transition name: next status}`), with their ids.
- `POST /rest/api/2/issue/{key}/transitions`: moves the issue by transition id and answers 204;
  an id not open from the current status is a 400, as Jira answers it.

Every request needs the Basic credentials given to the fake (else 401, as Jira answers a bad
API token). `fail_next` and `stall_next` inject faults into the next requests, whatever the
endpoint. Error bodies use Jira's shape `{"errorMessages": [...], "errors": {field: message}}`.
Deliberately absent: everything else of the API (404 in Jira's shape), ids for projects and
issue types (they are matched by key or name only), screens and permissions.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.local_server import LocalServer

PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
# Jira's simplified workflow: the transitions open from each status, by name, to the next one.
WORKFLOW: dict[str, dict[str, str]] = {
    "To Do": {"Start Progress": "In Progress", "Done": "Done"},
    "In Progress": {"Stop Progress": "To Do", "Done": "Done"},
    "Done": {"Reopen": "To Do"},
}
_SHUTDOWN_GRACE_SECONDS = 0.5


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int | None


def jira_error(
    status: int, messages: list[str], errors: dict[str, str] | None = None
) -> web.Response:
    """A response in Jira's error shape."""
    return web.json_response({"errorMessages": messages, "errors": errors or {}}, status=status)


class JiraFake(LocalServer):
    """`async with JiraFake() as jira:` then `JiraTickets(jira.url, jira.email, jira.token, ...)`.

    `required` maps field ids to display names (e.g. `{"components": "Component/s"}`) that a
    create request must carry, as a project's create screen can demand.
    """

    def __init__(
        self,
        *,
        email: str = "bot@example.com",
        token: str = "api-token",
        projects: tuple[str, ...] = ("OPS",),
        issue_types: tuple[str, ...] = ("Task", "Bug", "Incident"),
        required: dict[str, str] | None = None,
        components: tuple[str, ...] = ("api", "database"),
        workflow: dict[str, dict[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.email = email
        self.token = token
        self.projects = projects
        self.issue_types = issue_types
        self.required = dict(required or {})
        self.components = components
        self.workflow = dict(WORKFLOW if workflow is None else workflow)
        self.created: list[dict[str, Any]] = []
        self.comments: dict[str, list[str]] = {}
        self.status: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self._issues: dict[str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._stall = 0.0

    def fail_next(self, status: int = 503, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `count` requests with `status`; `retry_after` sets `Retry-After`,
        which the library needs before it retries a 503."""
        self._faults.append(_Fault(status, count, retry_after))

    def stall_next(self, seconds: float) -> None:
        """Hold the next request this long before answering, to drive client timeouts."""
        self._stall = seconds

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/rest/api/2/issue", self._create)
        app.router.add_get("/rest/api/2/issue/{key}", self._get)
        app.router.add_get("/rest/api/2/serverInfo", self._server_info)
        app.router.add_post("/rest/api/2/issue/{key}/comment", self._comment)
        app.router.add_get("/rest/api/2/issue/{key}/transitions", self._transitions)
        app.router.add_post("/rest/api/2/issue/{key}/transitions", self._transition)
        return app

    def make_runner(self, app: web.Application) -> web.AppRunner:
        return web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_GRACE_SECONDS
        )

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Record, stall, inject faults, then check Basic auth, before any endpoint runs."""
        self.requests.append((request.method, request.path))
        if self._stall:
            seconds, self._stall = self._stall, 0.0
            await asyncio.sleep(seconds)
        if self._faults:
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            response = jira_error(fault.status, [f"Injected failure ({fault.status})"])
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
            return response
        expected = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            response = jira_error(401, ["Client must be authenticated to access this resource."])
            response.headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            return response
        try:
            result: web.StreamResponse = await handler(request)
        except web.HTTPNotFound:
            return jira_error(404, ["Null pointer: no such resource in the fake."])
        return result

    async def _server_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "baseUrl": self.url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "serverTitle": "Jira (fake)",
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        issue = self._issues.get(request.match_info["key"])
        if issue is None:
            return jira_error(
                404, ["Issue does not exist or you do not have permission to see it."]
            )
        return web.json_response(issue)

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            fields = body["fields"]
        except (ValueError, KeyError, TypeError):
            return jira_error(400, ["Can not deserialize the request: no 'fields' object."])
        errors = self._validate(fields)
        if errors:
            return jira_error(400, [], errors)
        project = fields["project"]["key"]
        key = f"{project}-{sum(k.startswith(project + '-') for k in self._issues) + 1}"
        issue_id = str(10000 + len(self._issues))
        self.created.append(fields)
        self.status[key] = "To Do"
        self_url = f"{self.url}/rest/api/2/issue/{issue_id}"
        self._issues[key] = {"id": issue_id, "key": key, "self": self_url, "fields": fields}
        return web.json_response({"id": issue_id, "key": key, "self": self_url}, status=201)

    def _validate(self, fields: dict[str, Any]) -> dict[str, str]:
        """Jira's field errors for a create request, keyed by field id, as it words them."""
        errors: dict[str, str] = {}
        if _name(fields.get("project"), "key") not in self.projects:
            errors["project"] = "valid project is required"
        if _name(fields.get("issuetype"), "name") not in self.issue_types:
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        if "priority" in fields and _name(fields["priority"], "name") not in PRIORITIES:
            errors["priority"] = "The priority selected is invalid."
        for label in fields.get("labels", []):
            if not isinstance(label, str) or " " in label:
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        for component in fields.get("components", []):
            if _name(component, "name") not in self.components:
                errors["components"] = f"Component name '{_name(component, 'name')}' is not valid."
        for field, display in self.required.items():
            if not fields.get(field):
                errors[field] = f"{display} is required."
        return errors

    def _transition_ids(self, key: str) -> dict[str, tuple[str, str]]:
        """Transition id -> (name, next status), numbered as Jira numbers them: stable ids."""
        names = sorted({name for moves in self.workflow.values() for name in moves})
        moves = self.workflow.get(self.status[key], {})
        return {str(11 + names.index(name) * 10): (name, target) for name, target in moves.items()}

    async def _comment(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in self._issues:
            return jira_error(
                404, ["Issue does not exist or you do not have permission to see it."]
            )
        body = json.loads(await request.read()).get("body")
        if not isinstance(body, str) or not body.strip():
            return jira_error(400, [], {"comment": "Comment body can not be empty!"})
        self.comments.setdefault(key, []).append(body)
        comment_id = str(20000 + sum(len(c) for c in self.comments.values()))
        return web.json_response(
            {
                "id": comment_id,
                "body": body,
                "self": f"{self.url}/rest/api/2/issue/{key}/comment/{comment_id}",
            },
            status=201,
        )

    async def _transitions(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in self._issues:
            return jira_error(
                404, ["Issue does not exist or you do not have permission to see it."]
            )
        listed = [
            {"id": tid, "name": name, "to": {"name": target}}
            for tid, (name, target) in self._transition_ids(key).items()
        ]
        return web.json_response({"expand": "transitions", "transitions": listed})

    async def _transition(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in self._issues:
            return jira_error(
                404, ["Issue does not exist or you do not have permission to see it."]
            )
        wanted = str((json.loads(await request.read()).get("transition") or {}).get("id"))
        move = self._transition_ids(key).get(wanted)
        if move is None:
            return jira_error(400, [f"Transition id '{wanted}' is not valid for this issue."])
        self.status[key] = move[1]
        return web.Response(status=204)


def _name(value: Any, attribute: str) -> Any:
    """The key or name of a `{"key": ...}` / `{"name": ...}` reference, else None."""
    return value.get(attribute) if isinstance(value, dict) else None
