"""Grouping accuracy on Loghub-2k: the bot's log-line fingerprints beside drain3, in one run.

Issue 16's scoreboard. Loghub-2k is the log-parsing field's standard benchmark: 16 systems,
2,000 lines each, with the corrected ground-truth templates of the Loghub-2.0 paper
(bench/data/loghub_2k_corrected.json.gz, taken from logpai/logparser's
`data/loghub_2k_corrected`: each line's message content and its template's event id).

Each system's lines are fingerprinted as the CloudWatch Logs parser fingerprints a log event
(`ingest.fingerprint.of_text` within one log group, in arrival order), and each line's
fingerprint is taken as its group. drain3 runs on the same lines with its default settings, one
miner per system, each line's cluster being the one drain3 gives it on arrival. Both are scored
with the benchmark's grouping accuracy (GA): the share of lines whose group holds exactly the
lines of their true template. Targets: GA at least 0.90 averaged over the 16 systems, none below
0.60, one configuration for all; at least 20,000 lines per second; template state at most 50 MB
for 100,000 distinct lines. The bot's fingerprint is a pure function of the line (no learned
state), so the memory figure is what fingerprinting 100,000 distinct lines allocates at its
peak (tracemalloc), which holds nothing between lines.

    python bench/loghub_ga.py
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drain3 import TemplateMiner  # noqa: E402
from drain3.template_miner_config import TemplateMinerConfig  # noqa: E402

from ingest import fingerprint  # noqa: E402

DATA = ROOT / "bench" / "data" / "loghub_2k_corrected.json.gz"
LOG_GROUP = "/loghub/system"

Grouper = Callable[[Sequence[str]], list[Hashable]]


def load() -> dict[str, dict[str, list[str]]]:
    document: dict[str, dict[str, list[str]]] = json.loads(gzip.decompress(DATA.read_bytes()))
    return document


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[str]) -> float:
    """The share of lines whose predicted group is exactly their true group."""
    predicted_groups: dict[Hashable, set[int]] = defaultdict(set)
    true_groups: dict[str, set[int]] = defaultdict(set)
    for line, (group, event) in enumerate(zip(predicted, truth, strict=True)):
        predicted_groups[group].add(line)
        true_groups[event].add(line)
    exact = sum(
        1
        for group, event in zip(predicted, truth, strict=True)
        if predicted_groups[group] == true_groups[event]
    )
    return exact / len(truth)


def the_bot(lines: Sequence[str]) -> list[Hashable]:
    return [fingerprint.of_text("cloudwatch-logs", LOG_GROUP, line) for line in lines]


def drain3_defaults(lines: Sequence[str]) -> list[Hashable]:
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def measure(name: str, grouper: Grouper, data: dict[str, dict[str, list[str]]]) -> dict[str, float]:
    """Score `grouper` on every system; lines/s counts only the grouping calls, not the scoring."""
    scores: dict[str, float] = {}
    lines = 0
    elapsed = 0.0
    for system, columns in data.items():
        started = time.perf_counter()
        groups = grouper(columns["contents"])
        elapsed += time.perf_counter() - started
        scores[system] = grouping_accuracy(groups, columns["events"])
        lines += len(columns["contents"])
    average = sum(scores.values()) / len(scores)
    worst = min(scores, key=scores.__getitem__)
    print(
        f"{name:18s} GA average {average:.3f}, lowest {scores[worst]:.3f} ({worst}), "
        f"{lines / elapsed:,.0f} lines/s"
    )
    return scores


def peak_mb(lines: Sequence[str]) -> float:
    """The peak of what fingerprinting `lines` allocates, in MB."""
    tracemalloc.start()
    for line in lines:
        fingerprint.of_text("cloudwatch-logs", LOG_GROUP, line)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def distinct_lines(data: dict[str, dict[str, list[str]]], count: int) -> list[str]:
    """`count` distinct lines: the benchmark's lines, each repeated with a word of its own."""
    lines = [line for columns in data.values() for line in columns["contents"]]
    return [f"{lines[n % len(lines)]} w{chr(97 + n % 26)}{n}" for n in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    data = load()
    ours = measure("bot", the_bot, data)
    drain = measure("drain3 (defaults)", drain3_defaults, data)
    print(
        f"memory: {peak_mb(distinct_lines(data, 100_000)) * 1000:.0f} KB at the peak for 100,000 "
        "distinct lines (the bot keeps no template state)"
    )
    print(f"\n{'system':12s} {'drain3':>7s} {'bot':>7s}")
    for system in data:
        print(f"{system:12s} {drain[system]:7.3f} {ours[system]:7.3f}")


if __name__ == "__main__":
    main()
