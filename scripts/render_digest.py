"""Render docs/digest.png: the daily digest as it reads in Slack, for docs/oncall.md.

Seeds a temporary SQLite store with a fixed day of incidents, alerts and analyses, computes
the digest exactly as the bot does (`compute_stats`, then `digest_message`), and draws the
message's blocks as a Slack-like card with matplotlib's object API (no pyplot, no display).
Emoji markers become coloured dots; mrkdwn bold is drawn bold and code in a monospace box.

    python scripts/render_digest.py [--out docs/digest.png]
"""

from __future__ import annotations

import argparse
import hashlib
import html
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyBboxPatch, Rectangle

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blocks.commands import digest_message  # noqa: E402
from blocks.kit import Message  # noqa: E402
from bot.stats import compute_stats  # noqa: E402
from incidents.models import Alert, Incident, IncidentStatus, Occurrence, Severity  # noqa: E402
from incidents.sqlite import SqliteStore  # noqa: E402
from incidents.store import AnalysisRecord, IncidentWrite  # noqa: E402

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Paris")
WIDTH_PX, DPI = 1000, 100
MARKERS = {
    ":red_circle:": "#e01e5a",
    ":large_orange_circle:": "#f2952f",
    ":large_yellow_circle:": "#ecb22e",
    ":large_blue_circle:": "#1d9bd1",
}
EMOJI = {
    ":newspaper:": "\U0001f4f0",
    ":rotating_light:": "\u25cf",
    ":eyes:": "\u25cb",
    ":white_check_mark:": "\u2714",
}
TEXT, MUTED, CODE_RED = "#1d1c1d", "#616061", "#c01343"
# (id, severity, title, source, opened hours ago, acked after min, resolved after min, alerts)
INCIDENTS = [
    (
        "INC-4F2QK",
        Severity.CRITICAL,
        "orders-db: connections",
        "cloudwatch",
        20,
        3,
        42,
        14,
    ),
    ("INC-7K2M9", Severity.HIGH, "checkout p99 latency > 2s", "alertmanager", 16, 6, 95, 9),
    ("INC-9XW3T", Severity.HIGH, "payments-worker OOMKilled", "alertmanager", 6, 4, None, 11),
    ("INC-2HB8D", Severity.MEDIUM, "Lambda resize-image errors > 5%", "cloudwatch", 12, 12, 30, 6),
    ("INC-5RJ1V", Severity.MEDIUM, "SQS orders-dlq not empty", "cloudwatch", 3, None, None, 4),
    ("INC-8NC4P", Severity.LOW, "disk 85% on bastion-1", "custom", 22, None, 240, 3),
    ("INC-3TM6Z", Severity.LOW, "certificate expires in 14 days", "grafana", 9, None, None, 1),
    ("INC-6QD7L", Severity.CRITICAL, "api-gateway 5xx > 1%", "cloudwatch", 1, None, None, 7),
]


def seed(store: SqliteStore) -> None:
    """A fixed day: the same picture on every run."""
    for n, (key, severity, title, source, hours, acked, resolved, alerts) in enumerate(INCIDENTS):
        opened = NOW - timedelta(hours=hours)
        acked_at = opened + timedelta(minutes=acked) if acked else None
        resolved_at = opened + timedelta(minutes=resolved) if resolved else None
        status = (
            IncidentStatus.RESOLVED
            if resolved_at
            else IncidentStatus.ACKNOWLEDGED
            if acked_at
            else IncidentStatus.OPEN
        )
        fingerprint = hashlib.sha256(title.encode()).hexdigest()[:32]
        incident = Incident(
            id=key,
            fingerprint=fingerprint,
            title=title,
            source=source,
            severity=severity,
            status=status,
            opened_at=opened,
            last_seen_at=opened,
            occurrences=alerts,
            acknowledged_at=acked_at,
            acknowledged_by="U024BE7LH" if acked_at else None,
            resolved_at=resolved_at,
            resolved_by="alert:cloudwatch" if resolved_at else None,
        )
        store.write(IncidentWrite(incident=incident, expected_version=None, claims_head=True))
        for m in range(alerts):
            at = opened + timedelta(minutes=3 * m)
            alert = Alert(
                source=source,
                parser=source,
                title=title,
                severity=severity,
                occurred_at=at,
                received_at=at,
                fingerprint=fingerprint,
            )
            store.put_occurrence(Occurrence(key=f"{key}-{m}", incident_id=key, alert=alert))
        store.put_analysis(
            AnalysisRecord(
                incident_id=key,
                fingerprint=fingerprint,
                source=source,
                prompt_version="v3",
                created_at=opened + timedelta(seconds=20),
                analyzer="claude",
                model="claude-sonnet-4-6",
                cached=n % 3 == 2,
                cost_usd=0.0 if n % 3 == 2 else 0.0118 + 0.0013 * n,
                body="{}",
            )
        )


def _segments(line: str) -> list[tuple[str, str]]:
    """One mrkdwn line as (style, text) runs: bold, code, marker (a colour) or plain."""
    runs: list[tuple[str, str]] = []
    for part in re.split(r"(\*[^*\n]+\*|`[^`\n]+`|:[a-z_]+:)", line):
        if not part:
            continue
        if part in MARKERS:
            runs.append(("marker", MARKERS[part]))
        elif part in EMOJI:
            runs.append(("plain", EMOJI[part]))
        elif part.startswith("*") and part.endswith("*") and len(part) > 2:
            runs.append(("bold", html.unescape(part[1:-1])))
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            runs.append(("code", html.unescape(part[1:-1])))
        else:
            runs.append(("plain", html.unescape(part)))
    return runs


class Card:
    """Draws lines top-down on a figure in pixel units; `y` is the next baseline."""

    def __init__(self, figure: Figure, height: int) -> None:
        self.figure = figure
        self.height = height
        self.renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]
        self.y = 0.0

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        return x / WIDTH_PX, 1 - y / self.height

    def line(self, text: str, x: float, size: float = 11, color: str = TEXT) -> float:
        """One line of mrkdwn at (x, self.y); returns the x where it ended."""
        for style, run in _segments(text):
            if style == "marker":
                self.figure.patches.append(
                    _circle(self._xy(x + 7, self.y - size * 0.45), size * 0.5, run, self)
                )
                x += size * 1.45
                continue
            props: dict[str, Any] = {"fontsize": size, "color": color, "va": "baseline"}
            if style == "bold":
                props["fontweight"] = "bold"
            if style == "code":
                props |= {"family": "DejaVu Sans Mono", "color": CODE_RED, "fontsize": size - 1}
            if style == "code":
                x += 4
            drawn = self.figure.text(*self._xy(x, self.y), run, **props)
            extent = drawn.get_window_extent(self.renderer)
            if style == "code":
                box = FancyBboxPatch(
                    self._xy(x - 3, self.y + 4),
                    (extent.width + 6) / WIDTH_PX,
                    (size + 7) / self.height,
                    boxstyle="round,pad=0,rounding_size=0.002",
                    transform=self.figure.transFigure,
                    facecolor="#f6f6f6",
                    edgecolor="#dddddd",
                    linewidth=0.8,
                    zorder=0,
                )
                self.figure.patches.append(box)
                x += 8
            x += extent.width
        return x


def _circle(centre: tuple[float, float], radius_px: float, colour: str, card: Card) -> Ellipse:
    return Ellipse(
        centre,
        2 * radius_px / WIDTH_PX,
        2 * radius_px / card.height,
        transform=card.figure.transFigure,
        facecolor=colour,
        edgecolor="none",
    )


def _texts(block: dict[str, Any]) -> list[str]:
    if block["type"] == "context":
        return [element["text"] for element in block["elements"]]
    return [block["text"]["text"]] if "text" in block else []


def _height(message: Message) -> int:
    """Pixels the card needs: a pass over the blocks with the same spacing `draw` uses."""
    height = 110
    for block in message.blocks:
        if block["type"] == "header":
            height += 44
        elif "fields" in block:
            height += 58 * ((len(block["fields"]) + 1) // 2) + 8
        else:
            height += sum(22 * (text.count("\n") + 1) + 10 for text in _texts(block))
    return height


def draw(message: Message, out: Path) -> None:
    height = _height(message)
    figure = Figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI, facecolor="white")
    card = Card(figure, height)
    figure.patches.append(
        Rectangle((0, 0), 1, 1, transform=figure.transFigure, facecolor="#f8f8f8", zorder=-2)
    )
    figure.patches.append(
        FancyBboxPatch(
            card._xy(20, height - 16),
            (WIDTH_PX - 40) / WIDTH_PX,
            (height - 32) / height,
            boxstyle="round,pad=0,rounding_size=0.01",
            transform=figure.transFigure,
            facecolor="white",
            edgecolor="#e2e2e2",
            zorder=-1,
        )
    )
    figure.patches.append(
        FancyBboxPatch(
            card._xy(40, 76),
            40 / WIDTH_PX,
            40 / height,
            boxstyle="round,pad=0,rounding_size=0.006",
            transform=figure.transFigure,
            facecolor="#4a154b",
            edgecolor="none",
        )
    )
    figure.text(*card._xy(50, 63), "IR", fontsize=13, color="white", fontweight="bold")
    left = 96.0
    card.y = 52
    end = card.line("*incident-bot*", left, size=12)
    figure.text(*card._xy(end + 8, 52), "APP", fontsize=8, color=MUTED, va="baseline")
    figure.text(
        *card._xy(end + 42, 52),
        NOW.astimezone(ZONE).strftime("%H:%M"),
        fontsize=9,
        color=MUTED,
        va="baseline",
    )
    card.y = 84
    for block in message.blocks:
        if block["type"] == "header":
            card.y += 8
            # DejaVu has no emoji: the header's leading shortcode is left out of the picture.
            title = re.sub(r"^:[a-z_]+: ", "", block["text"]["text"])
            card.line(f"*{title}*", left, size=15)
            card.y += 36
        elif block["type"] == "context":
            for text in _texts(block):
                card.line(text, left, size=9.5, color=MUTED)
                card.y += 32
        elif "fields" in block:
            for n, field in enumerate(block["fields"]):
                title, value = field["text"].split("\n", 1)
                x = left + (n % 2) * 420
                card.line(title, x)
                card.y += 20
                card.line(value, x)
                card.y += 38 if n % 2 else -20
            card.y += 8
        else:
            for text in _texts(block):
                for line in text.split("\n"):
                    card.line(line, left)
                    card.y += 22
                card.y += 10
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(str(out), format="png", metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "docs" / "digest.png"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "digest.db")
        try:
            seed(store)
            stats = compute_stats(store, NOW - timedelta(hours=24), "last 24h", until=NOW)
        finally:
            store.close()
    draw(digest_message(stats, ZONE), args.out)
    sys.stdout.write(f"wrote {args.out}\n")


if __name__ == "__main__":
    main()
