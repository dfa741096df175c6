"""`MCP_SERVERS_FILE` read and checked (analysis/investigation/mcp_servers.py), what of a
server's listing is offered (`offer`), and how a tool result reaches the loop
(`result_value`), on the SDK's own types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types
import pytest
import yaml

from analysis.investigation.mcp_servers import McpServer, McpServersError, load_servers
from analysis.investigation.mcp_tools import McpToolError, offer, result_value
from bot.settings import SettingsError, load_settings

TOKEN = "grafana-token-0123456789"


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "mcp-servers.yaml"
    path.write_text(
        document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    )
    return path


def problem(tmp_path: Path, document: Any) -> str:
    path = write(tmp_path, document)
    with pytest.raises(McpServersError) as raised:
        load_servers(path)
    message = str(raised.value)
    assert message.startswith(str(path)), "the error names the file"
    return message


def test_both_transports_with_tokens_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GRAFANA_MCP_TOKEN", TOKEN)
    path = write(
        tmp_path,
        {
            "servers": {
                "deploys": {
                    "command": "deploy-mcp",
                    "args": ["--read-only"],
                    "env": {
                        "DEPLOY_API": "https://deploy.internal",
                        "TOKEN": "${GRAFANA_MCP_TOKEN}",
                    },
                    "tools": ["recent_deploys"],
                },
                "grafana": {
                    "url": "https://mcp.grafana.internal/mcp?tenant=ops",
                    "headers": {"Authorization": "Bearer ${GRAFANA_MCP_TOKEN}"},
                    "tools": ["search_dashboards", "query_prometheus"],
                    "read_only": False,
                },
            }
        },
    )

    deploys, grafana = load_servers(path)

    assert (deploys.name, deploys.transport, deploys.args) == ("deploys", "stdio", ["--read-only"])
    assert deploys.env["TOKEN"].get_secret_value() == TOKEN
    assert deploys.read_only is True, "read-only is the default"
    assert (grafana.transport, grafana.tools) == ("http", ["search_dashboards", "query_prometheus"])
    assert grafana.headers["Authorization"].get_secret_value() == f"Bearer {TOKEN}"
    assert grafana.where == "https://mcp.grafana.internal/mcp"
    assert TOKEN not in repr(deploys) + repr(grafana), "values are kept as secrets"
    assert load_servers(None) == []


def test_an_unset_variable_names_the_server_and_the_field(tmp_path: Path):
    message = problem(
        tmp_path,
        {"servers": {"grafana": {"url": "https://g/mcp", "tools": ["q"],
                                 "headers": {"Authorization": "Bearer ${NO_SUCH_TOKEN_VAR}"}}}},
    )  # fmt: skip

    assert "server grafana: headers.Authorization: ${NO_SUCH_TOKEN_VAR} is not set" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"tools": ["q"]}, "set either `command` (stdio) or `url`"),
        ({"command": "x", "url": "https://g/mcp", "tools": ["q"]}, "set either `command`"),
        ({"url": "https://g/mcp", "env": {"A": "b"}, "tools": ["q"]}, "env do not apply"),
        ({"command": "x", "headers": {"A": "b"}, "tools": ["q"]}, "headers do not apply"),
        ({"command": "x"}, "tools: Field required"),
        ({"command": "x", "tools": []}, "tools: List should have at least 1 item"),
        ({"command": "x", "tools": ["q", "r", "q"]}, "tools: q named more than once"),
        ({"command": "x", "tools": ["q"], "tool": ["typo"]}, "tool: Extra inputs"),
        ({"url": "ftp://g/mcp", "tools": ["q"]}, "url: String should match pattern"),
        ("just a string", "must be a mapping"),
        ({"url": "https://g/mcp?key=${KEY}", "tools": ["q"]}, "url: ${...} is replaced only in"),
    ],
)
def test_a_bad_server_is_refused_with_its_field(tmp_path: Path, entry: Any, expected: str):
    message = problem(tmp_path, {"servers": {"team": entry}})

    assert "server team: " in message and expected in message


def test_bad_names_and_documents_are_refused(tmp_path: Path):
    assert "name: String should match pattern" in problem(
        tmp_path, {"servers": {"team__x": {"command": "x", "tools": ["q"]}}}
    )
    assert "must hold a mapping of server names under `servers:`" in problem(
        tmp_path, {"servers": [{"command": "x"}]}
    )
    assert "is not valid YAML" in problem(tmp_path, "servers: {team: [")
    with pytest.raises(McpServersError, match="cannot read"):
        load_servers(tmp_path / "missing.yaml")


def test_a_mistake_stops_start_up(tmp_path: Path):
    path = write(tmp_path, {"servers": {"team": {"command": "x"}}})

    with pytest.raises(SettingsError, match="MCP_SERVERS_FILE: .*server team: tools"):
        load_settings(mcp_servers_file=path, sqlite_path=tmp_path / "x.db")


def test_the_settings_keep_the_servers_they_checked(tmp_path: Path):
    path = write(tmp_path, {"servers": {"team": {"command": "team-mcp", "tools": ["q"]}}})
    settings = load_settings(mcp_servers_file=path, sqlite_path=tmp_path / "x.db")
    path.write_text("servers: {team: [")  # read once: the run uses what start-up checked

    [server] = settings.mcp_servers
    assert (server.name, server.command, server.tools) == ("team", "team-mcp", ["q"])
    assert load_settings(sqlite_path=tmp_path / "x.db").mcp_servers == ()


def _tool(
    name: str, read_only: bool | None, schema: dict[str, Any] | None = None
) -> mcp_types.Tool:
    annotations = None if read_only is None else mcp_types.ToolAnnotations(read_only_hint=read_only)
    return mcp_types.Tool(
        name=name,
        input_schema={"type": "object"} if schema is None else schema,
        annotations=annotations,
    )


def test_only_allow_listed_read_only_tools_are_offered(tmp_path: Path):
    path = write(tmp_path, {"servers": {
        "team": {"command": "x", "tools": ["reads", "writes", "unmarked", "gone", "y" * 70]},
        "open": {"command": "x", "tools": ["writes", "unmarked"], "read_only": False},
    }})  # fmt: skip
    team, opened = load_servers(path)
    listed = [
        _tool("reads", True),
        _tool("writes", False),
        _tool("unmarked", None),
        _tool("unlisted", True),
        _tool("y" * 70, True),
    ]

    strict = offer(team, listed)
    loose = offer(opened, listed)

    assert [name for name, _ in strict.tools] == ["team__reads"]
    assert set(strict.withheld) == {"writes", "unmarked", "gone", "y" * 70}
    assert "not annotated read-only" in strict.withheld["unmarked"]
    assert strict.withheld["gone"] == "not listed by the server"
    assert "not a valid tool name" in strict.withheld["y" * 70]
    assert [name for name, _ in loose.tools] == ["open__writes", "open__unmarked"]


def test_a_tool_named_twice_is_offered_once():
    """The file's check refuses such a list; `offer` holds even for one built past it."""
    server = McpServer.model_construct(name="team", command="x", tools=["reads", "reads"])

    assert [name for name, _ in offer(server, [_tool("reads", True)]).tools] == ["team__reads"]


def test_a_tool_whose_schema_the_messages_api_refuses_is_withheld(tmp_path: Path):
    names = ["plain", "bare", "scalar", "either", "untyped"]
    [team] = load_servers(write(tmp_path, {"servers": {"team": {"command": "x", "tools": names}}}))
    listed = [
        _tool("plain", True, {"type": "object", "properties": {"q": {"anyOf": [{}]}}}),
        _tool("bare", True, {}),
        _tool("scalar", True, {"type": "string"}),
        _tool("either", True, {"type": "object", "anyOf": [{"required": ["a"]}]}),
        _tool("untyped", True, {"properties": {"q": {}}}),
    ]

    offered = offer(team, listed)

    assert [name for name, _ in offered.tools] == ["team__plain", "team__bare"]
    assert offered.withheld == {
        "scalar": "its input schema is not an object schema (type: 'string')",
        "either": "its input schema has anyOf at the top level",
        "untyped": "its input schema is not an object schema (type: None)",
    }


def _result(*content: Any, structured: dict[str, Any] | None = None, error: bool = False) -> Any:
    return mcp_types.CallToolResult(
        content=list(content), structured_content=structured, is_error=error
    )


def test_results_reach_the_loop_as_text_or_parsed_json():
    text = mcp_types.TextContent(type="text", text="all quiet")
    data = mcp_types.TextContent(type="text", text='{"password": "x", "n": 1}')
    image = mcp_types.ImageContent(type="image", data="AAAA", mime_type="image/png")

    assert result_value(_result(text)) == "all quiet"
    assert result_value(_result(data, structured={"password": "x", "n": 1})) == {
        "password": "x",
        "n": 1,
    }
    assert result_value(_result(structured={"only": "structured"})) == {"only": "structured"}
    assert result_value(_result(text, image)) == "all quiet\n[image omitted]"
    with pytest.raises(McpToolError, match="backend down"):
        result_value(_result(mcp_types.TextContent(type="text", text="backend down"), error=True))
