"""Grouping accuracy and speed of our fingerprint masking against drain3's template miner.

The bot must give one problem one fingerprint and two problems two; which method does that best
is a measurement, not a matter of taste. This script replays the labelled corpus in
tests/fixtures/fingerprint_corpus.json (groups of log lines that an on-call engineer would call
one problem) through each method and scores the clusters it makes against the labels:

- pairwise: of the pairs of lines from one group, how many share a cluster ("same problem
  grouped", recall); of the pairs from two groups, how many do not ("different problems
  apart"); precision and accuracy over all pairs;
- purity: the share of lines that sit in a cluster whose majority group is their own;
- whole groups: groups that got exactly one cluster holding nothing else (what the unit test
  asserts for our masking);
- throughput in lines per second, best of several runs.

drain3 learns its clusters from the stream, so its answer depends on the order of the lines:
they are fed in one shuffled order from a fixed seed (`--seed`), and each line's cluster is the
one drain3 assigns when the line arrives, as the bot would have to use it. The tuned drain3
gets the masking drain3's own example configuration ships (plus UUIDs and timestamps) and the
similarity threshold that scores best on this very corpus, which flatters it on purpose.

    python bench/fingerprint_accuracy.py [--seed S] [--repeat N] [--errors]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import fingerprint  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fingerprint_corpus.json"
KIND = "cloudwatch-logs"
SCOPE = "/aws/lambda/x"
SIM_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# drain3's examples/drain3.ini masking, led by UUIDs and timestamps, which it has no mask for and
# which its NUM and SEQ masks would otherwise cut into several tokens.
DRAIN3_MASKING = (
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?Z?", "TS"),
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
)

Clusterer = Callable[[str], str]


@dataclass(frozen=True)
class Method:
    """A way to cluster lines; `build` returns a fresh clusterer, since drain3's is stateful."""

    name: str
    build: Callable[[], Clusterer]


@dataclass(frozen=True)
class Score:
    clusters: int
    whole_groups: int
    recall: float
    apart: float
    precision: float
    accuracy: float
    purity: float
    lines_per_second: float


def load_corpus(path: Path = CORPUS) -> list[tuple[str, str]]:
    """(group, line) pairs, in corpus order."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [(group["group"], line) for group in document["groups"] for line in group["lines"]]


def ours() -> Clusterer:
    return lambda line: fingerprint.of_text(KIND, SCOPE, line)


def drain3_miner(sim_th: float = 0.4, masked: bool = False) -> TemplateMiner:
    config = TemplateMinerConfig()
    config.drain_sim_th = sim_th
    if masked:
        config.masking_instructions = [MaskingInstruction(p, name) for p, name in DRAIN3_MASKING]
    return TemplateMiner(config=config)


def drain3_clusterer(sim_th: float = 0.4, masked: bool = False) -> Clusterer:
    miner = drain3_miner(sim_th, masked)
    return lambda line: str(miner.add_log_message(line)["cluster_id"])


def drain3_on_our_templates() -> Clusterer:
    """Drain on top of our templates: whatever it merges beyond exact templates is what its
    similarity threshold adds, for better (variants we missed) or worse (near misses)."""
    miner = drain3_miner()
    return lambda line: str(miner.add_log_message(fingerprint.template(line))["cluster_id"])


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score(labels: Sequence[str], clusters: Sequence[str], lines_per_second: float) -> Score:
    """Pairwise scores from the contingency table, so a few hundred lines cost no n² loop."""
    cells = Counter(zip(labels, clusters, strict=True))
    together = sum(_pairs(n) for n in Counter(clusters).values())
    same = sum(_pairs(n) for n in Counter(labels).values())
    true_pos = sum(_pairs(n) for n in cells.values())
    total = _pairs(len(labels))
    false_pos, false_neg = together - true_pos, same - true_pos
    true_neg = total - true_pos - false_pos - false_neg
    majority: dict[str, int] = defaultdict(int)
    members: dict[str, set[str]] = defaultdict(set)
    homes: dict[str, set[str]] = defaultdict(set)
    for (label, cluster), n in cells.items():
        majority[cluster] = max(majority[cluster], n)
        members[cluster].add(label)
        homes[label].add(cluster)
    whole = sum(1 for cs in homes.values() if len(cs) == 1 and len(members[next(iter(cs))]) == 1)
    return Score(
        clusters=len(members),
        whole_groups=whole,
        recall=true_pos / same if same else 1.0,
        apart=true_neg / (true_neg + false_pos) if true_neg + false_pos else 1.0,
        precision=true_pos / together if together else 1.0,
        accuracy=(true_pos + true_neg) / total,
        purity=sum(majority.values()) / len(labels),
        lines_per_second=lines_per_second,
    )


def run(method: Method, corpus: Sequence[tuple[str, str]], repeat: int) -> tuple[Score, list[str]]:
    """Clusters from the first run (all runs agree: the order is fixed); speed from the best."""
    lines = [line for _, line in corpus]
    best = float("inf")
    clusters: list[str] = []
    for attempt in range(repeat):
        clusterer = method.build()
        started = time.perf_counter()
        assigned = [clusterer(line) for line in lines]
        best = min(best, time.perf_counter() - started)
        if attempt == 0:
            clusters = assigned
    return score([g for g, _ in corpus], clusters, len(lines) / best), clusters


def best_threshold(corpus: Sequence[tuple[str, str]], masked: bool) -> float:
    """The drain3 similarity threshold with the best pairwise accuracy on this corpus."""
    labels = [g for g, _ in corpus]

    def accuracy(sim_th: float) -> float:
        clusterer = drain3_clusterer(sim_th, masked)
        return score(labels, [clusterer(line) for _, line in corpus], 0.0).accuracy

    return max(SIM_THRESHOLDS, key=accuracy)


def print_table(groups: int, lines: int, results: Sequence[tuple[str, Score]]) -> None:
    print(f"corpus: {groups} groups, {lines} lines\n")
    header = (
        f"{'method':<34} {'clusters':>8} {'whole':>7} {'same':>7} {'apart':>8} "
        f"{'precis.':>8} {'accur.':>8} {'purity':>7} {'lines/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, s in results:
        print(
            f"{name:<34} {s.clusters:>8} {s.whole_groups:>3}/{groups:<3} {s.recall:>7.1%} "
            f"{s.apart:>8.3%} {s.precision:>8.1%} {s.accuracy:>8.3%} {s.purity:>7.1%} "
            f"{s.lines_per_second:>9,.0f}"
        )
    print(
        "\nsame = same-group pairs grouped (recall); apart = different-group pairs kept apart;"
        "\nwhole = groups with exactly one cluster of their own; purity = lines in a cluster"
        " whose majority is their group."
    )


def print_errors(name: str, corpus: Sequence[tuple[str, str]], clusters: Sequence[str]) -> None:
    """Which groups a method split and which it merged, to see how it fails, not just how often."""
    homes: dict[str, set[str]] = defaultdict(set)
    members: dict[str, set[str]] = defaultdict(set)
    for (group, _), cluster in zip(corpus, clusters, strict=True):
        homes[group].add(cluster)
        members[cluster].add(group)
    split = sorted(g for g, cs in homes.items() if len(cs) > 1)
    merged = sorted(sorted(gs) for gs in members.values() if len(gs) > 1)
    print(f"\n{name}: {len(split)} groups split, {len(merged)} clusters mixing groups")
    for group in split:
        print(f"  split  {group} ({len(homes[group])} clusters)")
    for groups in merged:
        print(f"  merged {', '.join(groups)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--seed", type=int, default=1234, help="shuffle seed (drain3 is order-dependent)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per method; best counts")
    parser.add_argument("--errors", action="store_true", help="list split and merged groups")
    args = parser.parse_args(argv)

    corpus = load_corpus()
    random.Random(args.seed).shuffle(corpus)
    plain_th = best_threshold(corpus, masked=False)
    masked_th = best_threshold(corpus, masked=True)
    methods = [
        Method("ours (fingerprint.of_text)", ours),
        Method("drain3 default", drain3_clusterer),
        Method(f"drain3 best sim_th={plain_th}", lambda: drain3_clusterer(plain_th)),
        Method(f"drain3 masked, sim_th={masked_th}", lambda: drain3_clusterer(masked_th, True)),
        Method("drain3 on our templates", drain3_on_our_templates),
    ]
    results = [(method.name, *run(method, corpus, args.repeat)) for method in methods]
    print_table(len({g for g, _ in corpus}), len(corpus), [(n, s) for n, s, _ in results])
    if args.errors:
        for name, _, clusters in results:
            print_errors(name, corpus, clusters)


if __name__ == "__main__":
    main()
