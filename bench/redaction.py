"""Redaction: recall per secret kind, precision over real payloads, time per alert.

Issue 14's targets: recall of at least 99 % over public secret-format samples with no kind
missed whole; at most 1 % of the non-secret tokens of the real payload fixtures redacted; at
most 2 ms per alert at p99.

- **Recall** reads tests/fixtures/secrets/<kind>.json: each case is a secret embedded in a
  realistic alert text. A case is caught when no 9-character piece of its secret is left in the
  redacted text (so a token cut in half by a marker still counts as a leak), markers aside, and
  unless the original text holds that piece outside the secret too.
- **Precision** reads the real sender payloads (tests/fixtures/payloads) and the look-alike
  texts of tests/fixtures/secrets/not_secrets.json, none of which holds a secret. Each text is
  cut into tokens at whitespace and JSON punctuation; a token counts as redacted when a marker
  replaced any of its characters. The share is redacted tokens over all tokens.
- **Time** is `redact_json` over each real payload (what the evidence path does) and `redact`
  over each corpus text, repeated; p50 and p99 per alert.

It also measures detect-secrets (its regex plugins, its keyword and entropy detectors) on its
own and beside our rules, the combinations issue 14 asks to compare. detect-secrets reports
secret values, which the harness replaces by a marker wherever they occur.

    python bench/redaction.py
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.redaction import redact  # noqa: E402
from analysis.redaction_json import redact_json  # noqa: E402

SECRETS = ROOT / "tests" / "fixtures" / "secrets"
PAYLOADS = ROOT / "tests" / "fixtures" / "payloads"
LEAK_PIECE = 9
"""A piece of a secret this long left in the text counts as a leak."""
TOKEN = re.compile(r"[^\s\"',;{}\[\]()<>\\]+")
MARKER = re.compile(r"\[REDACTED:[a-z0-9_]+\]")

Redactor = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    secret: str
    text: str


def corpus() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(SECRETS.glob("*.json")):
        if path.name == "not_secrets.json":
            continue
        document = json.loads(path.read_text("utf-8"))
        cases.extend(Case(document["kind"], c["secret"], c["text"]) for c in document["cases"])
    return cases


def clean_texts() -> list[str]:
    """Texts with no secret: the real payloads and the look-alikes."""
    texts = [
        path.read_text("utf-8", errors="replace")
        for path in sorted(PAYLOADS.rglob("*"))
        if path.is_file() and path.suffix != ".md"
    ]
    lookalikes = json.loads((SECRETS / "not_secrets.json").read_text("utf-8"))
    return texts + [case["text"] for case in lookalikes["cases"]]


def leaked(secret: str, text: str, redacted: str) -> bool:
    """True when a piece of `secret` is left in `redacted`. Markers are not the text (the
    marker `[REDACTED:rubygems_key]` holds the prefix `rubygems_`), and a piece that `text`
    also holds outside the secret is public (a Telegram token's bot id, logged beside it)."""
    left = MARKER.sub("\0", redacted)
    outside = text.replace(secret, "\0")
    if len(secret) <= LEAK_PIECE:
        return secret in left
    return any(
        piece in left and piece not in outside
        for piece in (secret[i : i + LEAK_PIECE] for i in range(len(secret) - LEAK_PIECE + 1))
    )


def redacted_tokens(original: str, redacted: str) -> tuple[int, int]:
    """(tokens whose characters a marker replaced, all tokens) of `original`."""
    removed = [False] * len(original)
    matcher = difflib.SequenceMatcher(None, original, redacted, autojunk=False)
    for tag, start, end, _, _ in matcher.get_opcodes():
        if tag != "equal":
            for index in range(start, end):
                removed[index] = True
    tokens = list(TOKEN.finditer(original))
    hit = sum(1 for token in tokens if any(removed[token.start() : token.end()]))
    return hit, len(tokens)


# --- detect-secrets, as a redactor ------------------------------------------------------------


def detect_secrets_redactor(plugin_names: Iterable[str]) -> Redactor:
    """Redact every value the named detect-secrets plugins report, line by line, the way its
    own scanner runs them (`analyze_line`, which applies the entropy limits and the keyword
    regexes of a YAML-like file), then its default heuristic filters."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.filters import heuristic
    from detect_secrets.settings import default_settings

    wanted = set(plugin_names)
    classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    plugins = [cls() for cls in classes if cls.__name__ in wanted]
    filters = (
        heuristic.is_sequential_string,
        heuristic.is_potential_uuid,
        heuristic.is_templated_secret,
        heuristic.is_prefixed_with_dollar_sign,
        heuristic.is_not_alphanumeric_string,
    )

    def run(text: str) -> str:
        found: set[str] = set()
        with default_settings():
            for line in text.splitlines():
                for plugin in plugins:
                    for potential in plugin.analyze_line(filename="alert.yaml", line=line):
                        value = potential.secret_value
                        if value and not any(check(value) for check in filters):
                            found.add(value)
        for value in sorted(found, key=len, reverse=True):
            text = text.replace(value, "[REDACTED:detect_secrets]")
        return text

    return run


DS_REGEX = (
    "AWSKeyDetector ArtifactoryDetector AzureStorageKeyDetector BasicAuthDetector "
    "CloudantDetector DiscordBotTokenDetector GitHubTokenDetector GitLabTokenDetector "
    "IbmCloudIamDetector IbmCosHmacDetector JwtTokenDetector MailchimpDetector NpmDetector "
    "OpenAIDetector PrivateKeyDetector PypiTokenDetector SendGridDetector SlackDetector "
    "SoftlayerDetector SquareOAuthDetector StripeDetector TelegramBotTokenDetector "
    "TwilioKeyDetector"
).split()
DS_HEURISTIC = ["KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString"]


def combined(*redactors: Redactor) -> Redactor:
    def run(text: str) -> str:
        for redactor in redactors:
            text = redactor(text)
        return text

    return run


def ours(text: str) -> str:
    return redact(text)


# --- measuring ------------------------------------------------------------------------------


def recall(redactor: Redactor, cases: list[Case]) -> dict[str, tuple[int, int]]:
    """Per kind: (caught, cases)."""
    per_kind: dict[str, list[int]] = {}
    for case in cases:
        counts = per_kind.setdefault(case.kind, [0, 0])
        counts[1] += 1
        if not leaked(case.secret, case.text, redactor(case.text)):
            counts[0] += 1
    return {kind: (caught, total) for kind, (caught, total) in per_kind.items()}


def precision(redactor: Redactor, texts: list[str]) -> tuple[int, int]:
    hit = total = 0
    for text in texts:
        redacted = redactor(text)
        if redacted != text:
            h, t = redacted_tokens(text, redacted)
            hit, total = hit + h, total + t
        else:
            total += len(TOKEN.findall(text))
    return hit, total


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timings(cases: list[Case], payloads: list[Any], rounds: int) -> list[float]:
    """Milliseconds per alert: `redact_json` over each real payload, `redact` over each
    corpus text."""
    samples: list[float] = []
    for _ in range(rounds):
        for document in payloads:
            start = time.perf_counter()
            redact_json(document)
            samples.append((time.perf_counter() - start) * 1000)
        for case in cases:
            start = time.perf_counter()
            redact(case.text)
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def misses(redactor: Redactor, cases: list[Case]) -> list[Case]:
    return [case for case in cases if leaked(case.secret, case.text, redactor(case.text))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="timing rounds (default 20)")
    parser.add_argument("--show-misses", action="store_true", help="print each missed case")
    parser.add_argument("--no-detect-secrets", action="store_true", help="measure our rules alone")
    args = parser.parse_args()

    cases = corpus()
    texts = clean_texts()
    payloads = []
    for path in sorted(PAYLOADS.rglob("*.json")):
        try:
            payloads.append(json.loads(path.read_text("utf-8")))
        except ValueError:
            continue
    print(
        f"corpus: {len(cases)} secrets of {len({c.kind for c in cases})} kinds; "
        f"clean: {len(texts)} texts, {sum(len(TOKEN.findall(t)) for t in texts)} tokens"
    )

    combinations: list[tuple[str, Redactor]] = [("ours", ours)]
    if not args.no_detect_secrets:
        ds_regex = detect_secrets_redactor(DS_REGEX)
        ds_all = detect_secrets_redactor(DS_REGEX + DS_HEURISTIC)
        combinations += [
            ("detect-secrets regex plugins", ds_regex),
            ("detect-secrets all plugins", ds_all),
            ("ours + detect-secrets regex", combined(ours, ds_regex)),
            ("ours + detect-secrets all", combined(ours, ds_all)),
        ]

    print()
    print(f"{'combination':34s} {'recall':>8s} {'kinds missed whole':>19s} {'redacted':>9s}")
    per_kind_ours: dict[str, tuple[int, int]] = {}
    for name, redactor in combinations:
        per_kind = recall(redactor, cases)
        if redactor is ours:
            per_kind_ours = per_kind
        caught = sum(c for c, _ in per_kind.values())
        whole = sum(1 for c, _ in per_kind.values() if c == 0)
        hit, total = precision(redactor, texts)
        print(
            f"{name:34s} {caught / len(cases):8.2%} {whole:>19d} {hit / total:9.3%}"
            f"   ({caught}/{len(cases)}, {hit}/{total} tokens)"
        )

    print("\nrecall per kind (ours):")
    for kind, (caught, total) in sorted(per_kind_ours.items()):
        flag = "" if caught == total else "   <-- missed"
        print(f"  {kind:28s} {caught:3d}/{total:<3d}{flag}")
    if args.show_misses:
        for case in misses(ours, cases):
            print(f"\nMISSED {case.kind}: {case.secret}\n  {redact(case.text)[:400]}")

    samples = timings(cases, payloads, args.rounds)
    print(
        f"\ntime per alert (ours, {len(samples)} samples): "
        f"p50 {statistics.median(samples):.3f} ms, p99 {percentile(samples, 0.99):.3f} ms, "
        f"max {max(samples):.3f} ms"
    )


if __name__ == "__main__":
    main()
