"""`incident-bot`: `run` the bot, `analyze` one payload from a file or stdin, serve the
incidents to an MCP client on stdio (`mcp`), and the operator's commands (`query`, `costs`,
`postmortem`, `doctor`, `init-store`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from analysis.engine import AnalysisEngine
from analysis.models import Analysis
from analysis.postmortem_document import PostMortem
from analysis.postmortem_markdown import render_markdown
from bot import app, components, doctor, logs, report
from bot.postmortems import IncidentMissingError
from bot.settings import Settings, SettingsError, load_settings, parse_duration
from incidents.models import Incident, Severity
from incidents.store import Store, StoreError
from ingest.normalize import MAX_PAYLOAD_BYTES
from ingest.pipeline import IngestReport, UnreadablePayloadError

if TYPE_CHECKING:
    from analysis.investigation.mcp_tools import McpTools

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="incident-bot",
        description="Alerts in, grouped and analysed incidents out.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="receive alerts and publish incidents until stopped")
    analyze = commands.add_parser("analyze", help="run the pipeline on one payload and report")
    analyze.add_argument("file", help="payload file, or - for standard input")
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    query = commands.add_parser("query", help="alerts of a severity received in a period")
    query.add_argument(
        "--severity", required=True, type=str.upper, choices=[s.value for s in Severity]
    )
    query.add_argument("--since", default="24h", help="how far back, e.g. 24h, 7d")
    query.add_argument("--limit", type=int, default=100)
    query.add_argument("--json", action="store_true", help="one JSON object per line")
    commands.add_parser(
        "mcp", help="serve the incidents to an MCP client (Claude Desktop, Claude Code) on stdio"
    )
    commands.add_parser("doctor", help="check the settings and every configured service")
    commands.add_parser(
        "init-store", help="create the store's tables (DynamoDB) or schema (SQLite)"
    )
    postmortem = commands.add_parser(
        "postmortem", help="draft the blameless post-mortem of an incident, as Markdown"
    )
    postmortem.add_argument("incident", help="the incident id, e.g. INC-7K2M9")
    postmortem.add_argument(
        "--output", "-o", help="write the Markdown to this file instead of standard output"
    )
    costs = commands.add_parser("costs", help="analyses and Claude cost per day and source")
    costs.add_argument("--since", default="7d", help="how far back, e.g. 24h, 7d (default 7d)")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        return _fail(f"configuration error: {exc}")
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "run":
            asyncio.run(app.run(settings))
            return 0
        if args.command == "mcp":
            return _mcp(settings)
        if args.command == "costs":
            return _costs(args.since, settings)
        if args.command == "doctor":
            return _doctor(settings)
        if args.command == "query":
            return _query(Severity(args.severity), args.since, args.limit, args.json, settings)
        if args.command == "postmortem":
            return _postmortem(args.incident.upper(), args.output, settings)
        if args.command == "init-store":
            return _init_store(settings)
        return _analyze(args.file, args.json, settings)
    except StoreError as exc:
        return _fail(f"store error: {exc}")
    except OSError as exc:
        return _fail(str(exc))


def _analyze(source: str, as_json: bool, settings: Settings) -> int:
    try:
        body = _read(source)
    except OSError as exc:
        return _fail(f"cannot read {source}: {exc.strerror or exc}")
    origin = "stdin" if source == "-" else f"file:{Path(source).name}"
    store = components.build_store(settings)
    try:
        result = components.build_ingestor(settings, store).ingest(body, origin)
        mcp = components.build_mcp_tools(settings)
        engine = components.build_engine(settings, store, None, mcp=mcp)
        analyses = asyncio.run(_analyses(result, engine, mcp))
    except UnreadablePayloadError as exc:
        kept = ", ".join(exc.dead_letter_ids)
        return _fail(f"cannot read payload: {exc.reason} (kept as dead letter {kept})")
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(result, analyses), indent=2) + "\n")
    else:
        report.render(result, analyses, Console())
    return 0


async def _analyses(
    result: IngestReport, engine: AnalysisEngine, mcp: McpTools | None = None
) -> dict[str, Analysis]:
    """One analysis per incident the payload touched, for the alert that first touched it.
    The team's MCP servers (`mcp`) are open for the command's duration: connected before
    the first analysis, closed after the last."""
    analyses: dict[str, Analysis] = {}
    try:
        if mcp is not None:
            await mcp.ready()
        for outcome in result.outcomes:
            incident = outcome.incident
            if incident is not None and incident.id not in analyses:
                analyses[incident.id] = await engine.analyze(incident, outcome.alert)
    finally:
        await engine.close()
        if mcp is not None:
            await mcp.close()
    return analyses


def _query(severity: Severity, since: str, limit: int, as_json: bool, settings: Settings) -> int:
    try:
        window = parse_duration(since)
    except ValueError as exc:
        return _fail(f"--since: {exc}")
    store = components.build_store(settings)
    try:
        found = store.alerts_by_severity(severity, datetime.now(UTC) - window, limit)
    finally:
        store.close()
    if as_json:
        for occurrence in found:
            row = {"incident_id": occurrence.incident_id, **report.alert_json(occurrence.alert)}
            sys.stdout.write(json.dumps(row) + "\n")
    else:
        report.render_alerts(found, f"{severity.value} alerts, last {since}", Console())
    return 0


def _postmortem(incident_id: str, output: str | None, settings: Settings) -> int:
    """The draft from the store (and Claude when configured). The Slack thread is read only
    by the bot's own command, which has a Slack session; here the footer says what was read."""
    store = components.build_store(settings)
    try:
        incident, draft = asyncio.run(_draft(settings, store, incident_id))
    except IncidentMissingError:
        return _fail(f"there is no incident {incident_id}")
    finally:
        store.close()
    document = render_markdown(draft, incident)
    if output is None:
        sys.stdout.write(document)
    else:
        Path(output).write_text(document, encoding="utf-8")
        sys.stderr.write(f"wrote {output} ({draft.note})\n")
    return 0


async def _draft(settings: Settings, store: Store, incident_id: str) -> tuple[Incident, PostMortem]:
    drafts, client = components.build_postmortems(settings, store, None)
    try:
        return await drafts.draft(incident_id)
    finally:
        if client is not None:
            await client.close()


def _mcp(settings: Settings) -> int:
    """Imported here: the SDK is loaded only by the commands that serve MCP."""
    from bot.mcp_server.stdio import serve_stdio

    asyncio.run(serve_stdio(settings))
    return 0


def _init_store(settings: Settings) -> int:
    """SQLite migrates itself on open; DynamoDB's tables are created here (in AWS, the
    CloudFormation template owns them and the bot's role may not create tables)."""
    store = components.build_store(settings)
    try:
        if settings.store == "dynamodb":
            from incidents.dynamodb import DynamoStore  # boto3: only for this store

            assert isinstance(store, DynamoStore)
            store.create_tables()
    finally:
        store.close()
    sys.stdout.write(f"ready: {components.describe_store(settings)}\n")
    return 0


def _doctor(settings: Settings) -> int:
    findings = asyncio.run(doctor.diagnose(settings))
    sys.stdout.write("ok    settings   valid\n")
    for finding in findings:
        sys.stdout.write(finding.line() + "\n")
    return 1 if any(not finding.ok for finding in findings) else 0


def _costs(since: str, settings: Settings) -> int:
    try:
        window = parse_duration(since)
    except ValueError as exc:
        return _fail(f"--since: {exc}")
    store = components.build_store(settings)
    try:
        totals = store.cost_totals(datetime.now(UTC) - window)
    finally:
        store.close()
    report.render_costs(totals, Console())
    return 0


def _read(source: str) -> bytes:
    """At most one byte past the limit: enough to know it is too large, never the whole file."""
    if source == "-":
        return sys.stdin.buffer.read(MAX_PAYLOAD_BYTES + 1)
    with open(source, "rb") as handle:
        return handle.read(MAX_PAYLOAD_BYTES + 1)


def _fail(message: str) -> int:
    sys.stderr.write(f"incident-bot: {message}\n")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
