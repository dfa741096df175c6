"""Render docs/graph.png, docs/oncall.md's picture of the metric graph the bot posts.

The data is made up but realistic and fixed (a web server's CPU climbing past an 80%
threshold, one datapoint a minute), and the graph is drawn by the product's own
`analysis.graph.draw_metric_graph`, so re-running this after a change to the graph shows the
change and nothing else:

    .venv/bin/python scripts/render_graph.py [output.png]
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analysis.alarm_metrics import AlarmMetrics, MetricSeries
from analysis.graph import draw_metric_graph

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "graph.png"
CHANGED = datetime(2026, 3, 14, 9, 2, 41, tzinfo=UTC)
PERIOD = 60
EVALUATION_PERIODS = 3


def cpu(minute: int) -> float:
    """CPU % at `minute` minutes past 08:00: a steady ~35% with a gentle ripple, a climb from
    08:45 (a deploy leaking worker threads), pinned near 97% from 09:00."""
    ripple = 4 * math.sin(minute / 2.3) + 2 * math.sin(minute * 1.7)
    if minute < 45:
        return round(35 + ripple, 2)
    climb = min(1.0, (minute - 45) / 15)
    return round(35 + ripple * (1 - climb) + 62 * math.pow(climb, 1.6) - (minute % 2) * climb, 2)


def sample_metrics() -> AlarmMetrics:
    """The AlarmMetrics `read_alarm_metrics` would return for this alarm."""
    start, end = CHANGED - timedelta(minutes=60), CHANGED + timedelta(minutes=10)
    eight = CHANGED.replace(hour=8, minute=0, second=0)
    minutes = range(3, 73)  # the whole minutes inside the window, as GetMetricData returns
    return AlarmMetrics(
        alarm_name="web-cpu-high",
        start=start,
        end=end,
        changed_at=CHANGED,
        period=PERIOD,
        threshold=80.0,
        comparison="GreaterThanThreshold",
        evaluation_window_seconds=EVALUATION_PERIODS * PERIOD,
        series=[
            MetricSeries(
                id="m1",
                label="AWS/EC2 CPUUtilization InstanceId=i-0abc1234 (Average, 60s)",
                compared=True,
                timestamps=[eight + timedelta(minutes=m) for m in minutes],
                values=[cpu(m) for m in minutes],
            )
        ],
    )


def main(argv: list[str]) -> int:
    output = Path(argv[1]) if len(argv) > 1 else OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(draw_metric_graph(sample_metrics()))
    sys.stdout.write(f"wrote {output}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
