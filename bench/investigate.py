"""Claude investigates (issue 18): recorded scenarios replayed through the real investigation.

Each scenario (bench/data/investigate/*.yaml) is an alert in a real sender's format, the AWS
state behind it seeded into moto (logs, metrics, alarms, CloudTrail events, ECS services,
Lambda versions, our past incidents), the true cause, and a recording of a model investigating
it. The alert is parsed and recorded in a fresh SQLite store, the context gathered from moto,
and the bot's own `Investigator` runs with the real tools against moto; "Claude" is the local
Messages API fake answering from the recording. Prints, per scenario and overall, the steps,
tool calls, tool errors, tokens, cost, time, whether the conclusion names the true cause, and
how many of the claims its evidence lists cite a call that answered (each claim left bare and
each citation the loop dropped named), beside the targets for real Claude.

    python bench/investigate.py                  # replay every recording
    python bench/investigate.py --only NAME      # one scenario
    python bench/investigate.py --json           # machine-readable figures
    python bench/investigate.py --verbose        # each tool call with its result's first line
    ANTHROPIC_API_KEY=... python bench/investigate.py --live [--model M]
                                                 # real Claude; its answers become the recordings

Replay scores the recordings, not the model. Targets with real Claude: the true cause named in
at least 85 % of scenarios, a median of at most 6 tool calls, p95 under 60 s, at most $0.10 per
investigation. The evidence figure has no target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.investigation import scenario as scenarios  # noqa: E402
from bench.investigation.replay import Harness, Run  # noqa: E402
from bench.investigation.score import TARGETS, calls, overall, score, summary, table  # noqa: E402
from bench.investigation.tools import boto3_environment, clients, tools_for  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.moto_gaps import filled_moto_gaps  # noqa: E402
from tests.fakes.moto_server import running_moto_server  # noqa: E402


def _default_model() -> str:
    return str(Settings.model_fields["analysis_model"].default)


async def _run_all(
    harness: Harness, chosen: list[tuple[Path, scenarios.Scenario]], args: argparse.Namespace
) -> list[Run]:
    runs = []
    for path, scenario in chosen:
        if args.live:
            run = await harness.live(scenario, args.model, os.environ["ANTHROPIC_API_KEY"])
            trace = run.analysis.investigation
            if run.recorded is not None and trace is not None:  # else Claude gave no analysis
                expect = scenarios.Expect(stopped=trace.stopped)
                scenarios.save_recording(path, run.recorded, expect)
        else:
            model = (
                args.model if scenario.recording.model == "scripted" else scenario.recording.model
            )
            run = await harness.replay(scenario, model)
        runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME", help="run this scenario only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--verbose", action="store_true", help="print every tool call")
    parser.add_argument("--live", action="store_true", help="real Claude (ANTHROPIC_API_KEY)")
    parser.add_argument("--model", default=_default_model(), help="the model (%(default)s)")
    args = parser.parse_args()
    if args.live and not os.environ.get("ANTHROPIC_API_KEY"):
        parser.error("--live needs ANTHROPIC_API_KEY")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's line per request
    chosen = [(path, scenarios.load(path)) for path in scenarios.paths()]
    if args.only:
        chosen = [(p, s) for p, s in chosen if s.name == args.only]
        if not chosen:
            parser.error(f"no scenario named {args.only!r}")
    with (
        tempfile.TemporaryDirectory() as folder,
        filled_moto_gaps(),
        running_moto_server() as endpoint,
    ):
        os.environ.update(boto3_environment(endpoint, Path(folder)))
        harness = Harness(endpoint, clients(), Path(folder), tools_for)
        runs = asyncio.run(_run_all(harness, chosen, args))
    outcomes = [score(run) for run in runs]
    figures = overall(outcomes)
    if args.json:
        document = {
            "live": args.live,
            "scores": "the model" if args.live else "the recordings, not the model",
            "overall": figures,
            "targets": TARGETS,
            "scenarios": [o.as_json() for o in outcomes],
        }
        print(json.dumps(document, indent=1, ensure_ascii=False))
        return
    if args.verbose:
        for run in runs:
            print("\n".join(calls(run)), end="\n\n")
    print(table(outcomes))
    print()
    print(summary(figures, args.live))


if __name__ == "__main__":
    main()
