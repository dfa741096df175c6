"""`MCP_SERVERS_FILE`: the team's MCP servers the investigation may call, and which of their
tools.

Read once at start-up (a mistake stops it, naming the file, the server and the field), with
no MCP SDK import: the settings validate the file, and an idle bot loads no SDK it does not
use. `${NAME}` in an `env` or `headers` value is replaced by that environment variable, so
that tokens stay out of the file; the values are kept as secrets, never shown or logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,29}$"
"""Letters, digits and hyphens: `<server>__<tool>` must split one way only, and fit the
Messages API's 64 characters with room for the tool's own name."""

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpServersError(Exception):
    """The file is missing, not YAML, or a server in it does not validate."""


class McpServer(BaseModel):
    """One server: either a command run over stdio, or a Streamable HTTP URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    tools: list[str] = Field(min_length=1)
    """The allow-list: only these tools are offered to Claude, and only they can be called."""
    read_only: bool = True
    """Offer only the allow-listed tools that the server annotates `readOnlyHint: true`."""

    @field_validator("tools")
    @classmethod
    def _each_tool_once(cls, tools: list[str]) -> list[str]:
        """A tool named twice would be offered twice, and the investigation refuses a tool
        list with two tools of one name: every HIGH or CRITICAL analysis would fail."""
        twice = sorted({name for name in tools if tools.count(name) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} named more than once")
        return tools

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("set either `command` (stdio) or `url` (Streamable HTTP)")
        stray = (
            [f for f in ("args", "env", "cwd") if f in self.model_fields_set]
            if self.url is not None
            else [f for f in ("headers",) if f in self.model_fields_set]
        )
        if stray:
            kind = "`url`" if self.url is not None else "`command`"
            raise ValueError(f"{', '.join(stray)} do not apply to a server with {kind}")
        return self

    @model_validator(mode="after")
    def _variables_only_where_expanded(self) -> McpServer:
        """A `${NAME}` elsewhere would reach the server as those very characters."""
        for field, value in (("command", self.command), ("args", " ".join(self.args)),
                             ("cwd", str(self.cwd or "")), ("url", self.url)):  # fmt: skip
            if value and _VARIABLE.search(value):
                raise ValueError(f"{field}: ${{...}} is replaced only in `env` and `headers`")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @property
    def where(self) -> str:
        """Where the server is, for logs and `doctor`: never a header, an env value or an
        argument (any of which may hold a token)."""
        if self.url is not None:
            return self.url.split("?", 1)[0]
        return f"`{self.command}`"


def load_servers(path: Path | None) -> list[McpServer]:
    """No file configured: no servers. The file holds a mapping `servers:` of name to
    server."""
    if path is None:
        return []
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpServersError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise McpServersError(f"{path} is not valid YAML: {exc}") from None
    servers = document.get("servers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise McpServersError(f"{path} must hold a mapping of server names under `servers:`")
    return [_server(path, str(name), entry) for name, entry in servers.items()]


def _server(path: Path, name: str, entry: Any) -> McpServer:
    where = f"{path}, server {name}"
    if not isinstance(entry, dict):
        raise McpServersError(f"{where}: must be a mapping (command or url, tools, ...)")
    if "name" in entry:
        raise McpServersError(f"{where}: name: the server's name is its key under `servers:`")
    try:
        expanded = {
            **entry,
            **{
                field: _expanded(field, entry[field])
                for field in ("env", "headers")
                if isinstance(entry.get(field), dict)
            },
        }
        return McpServer.model_validate({**expanded, "name": name})
    except ValueError as exc:
        raise McpServersError(f"{where}: {_problems(exc)}") from None


def _expanded(field: str, values: dict[Any, Any]) -> dict[Any, Any]:
    """Each `${NAME}` in the values replaced by that environment variable; one not set is an
    error, since a server sent an empty token fails later and less clearly."""

    def value_of(key: Any, value: Any) -> Any:
        if not isinstance(value, str):
            return value

        def variable(match: re.Match[str]) -> str:
            found = os.environ.get(match.group(1))
            if found is None:
                raise ValueError(f"{field}.{key}: ${{{match.group(1)}}} is not set")
            return found

        return _VARIABLE.sub(variable, value)

    return {key: value_of(key, value) for key, value in values.items()}


def _problems(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(
        "".join(f"{part}." for part in error["loc"]).removesuffix(".")
        + (": " if error["loc"] else "")
        + str(error["msg"]).removeprefix("Value error, ")
        for error in exc.errors()
    )
