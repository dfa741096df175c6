"""The metric graph posted in an alarm incident's thread: a PNG drawn here, from the same
`AlarmMetrics` the analysis reads (`analysis.alarm_metrics.read_alarm_metrics`).

Drawn by us rather than fetched with CloudWatch's GetMetricWidgetImage: moto does not
implement that API, so it could not be tested against a real server, and a self-drawn graph
works for any source that sends datapoints, not only CloudWatch.

matplotlib's object API only (`Figure` + `FigureCanvasAgg`), never pyplot: pyplot keeps a
global registry of figures and a current-figure state, which is not thread-safe, and the bot
draws in a worker thread. A `Figure` made here belongs to one call and is garbage once the PNG
is written, so nothing needs closing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from matplotlib import dates as mdates
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.alarm_metrics import AlarmMetrics, MetricSeries, require_datapoints
from incidents.times import as_utc

DPI = 100
MIN_WIDTH_PX = 480
MIN_HEIGHT_PX = 240
# The Slack-ish palette: the compared series stands out, inputs stay in the background.
COMPARED_COLOURS = ("#1264a3", "#7b2cbf", "#2b8a3e")
INPUT_COLOURS = ("#868e96", "#a9746e", "#5c940d", "#d9480f")
THRESHOLD_COLOUR = "#e03131"
WINDOW_COLOUR = "#ffa8a8"
CHANGE_COLOUR = "#c92a2a"
# A series whose values lie within this factor of the compared series' shares its y axis;
# beyond it (Invocations beside a Duration/Invocations ratio) it gets an axis of its own,
# or the compared line would be flattened.
SAME_SCALE = 10.0
_LEGEND_LABEL = 90
_PX_PER_CHAR = 6.0  # DejaVu Sans at 8 pt and 100 dpi, with the legend's marker
_COMPARISON = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": "≥",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
}


class GraphError(Exception):
    """A graph could not be drawn from the metric data given."""


@dataclass(frozen=True)
class _Points:
    series: MetricSeries
    times: list[datetime]
    values: list[float]


def draw_metric_graph(
    metrics: AlarmMetrics, *, width_px: int = 1000, height_px: int = 400
) -> bytes:
    """The alarm's metric as PNG bytes of exactly `width_px` × `height_px`.

    Each series as a line (the compared ones bold, the inputs of a metric-math expression thin
    and grey-ish), the threshold as a dashed line labelled with its comparison and value, the
    alarm's evaluation window shaded up to the state change, and the state change marked. The
    time axis is UTC, in HH:MM. The same metrics always give the same bytes: the PNG carries
    no software or time stamp.

    Raises `NoDatapointsError` when no series has a datapoint, and `ValueError` for a size
    too small to draw legibly."""
    if width_px < MIN_WIDTH_PX or height_px < MIN_HEIGHT_PX:
        raise ValueError(
            f"graph size {width_px}x{height_px} px is below {MIN_WIDTH_PX}x{MIN_HEIGHT_PX}"
        )
    require_datapoints(metrics)
    drawn = [_finite(s) for s in metrics.series]
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    handles = _draw(axes, metrics, drawn)
    _decorate(axes, metrics, handles)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    png = buffer.getvalue()
    if canvas.get_width_height() != (width_px, height_px):  # float rounding of the inch size
        raise GraphError(f"drew {canvas.get_width_height()} instead of {width_px}x{height_px}")
    return png


def threshold_label(metrics: AlarmMetrics) -> str:
    """`threshold > 80`, with the operator where the alarm named one it compares with."""
    if metrics.threshold is None:
        return ""
    symbol = _COMPARISON.get(metrics.comparison, "")
    return f"threshold {symbol} {_number(metrics.threshold)}".replace("  ", " ")


def _draw(axes: Axes, metrics: AlarmMetrics, drawn: list[_Points]) -> list[Artist]:
    """The lines, threshold, window and marker; returns the legend's handles in order."""
    compared = [p for p in drawn if p.series.compared]
    inputs = [p for p in drawn if not p.series.compared]
    main_values = [v for p in compared for v in p.values]
    handles: list[Artist] = []
    for index, points in enumerate(compared):
        handles.append(_line(axes, points, COMPARED_COLOURS[index % len(COMPARED_COLOURS)], 2.2))
    # Inputs share the axis when the compared series have no data (moto's metric math, or a
    # real expression that errored) or lie on a similar scale; otherwise a right-hand axis.
    input_values = [v for p in inputs for v in p.values]
    input_axes = axes
    if main_values and input_values and not _same_scale(main_values, input_values):
        input_axes = axes.twinx()
        input_axes.set_ylabel("expression inputs", color=INPUT_COLOURS[0], fontsize=9)
        input_axes.tick_params(axis="y", colors=INPUT_COLOURS[0], labelsize=8)
        input_axes.yaxis.set_major_locator(MaxNLocator(nbins=5))
        for side in ("top", "left", "bottom"):
            input_axes.spines[side].set_visible(False)
    for index, points in enumerate(inputs):
        colour = INPUT_COLOURS[index % len(INPUT_COLOURS)]
        handles.append(_line(input_axes, points, colour, 1.2, alpha=0.85))

    if metrics.threshold is not None:
        handles.append(
            axes.axhline(
                metrics.threshold,
                color=THRESHOLD_COLOUR,
                linestyle=(0, (6, 4)),
                linewidth=1.4,
                label=threshold_label(metrics),
                zorder=3,
            )
        )
        # The value on the line itself too, at the right edge, for a reader skimming the image.
        axes.annotate(
            _number(metrics.threshold),
            xy=(1.0, metrics.threshold),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=8,
            color=THRESHOLD_COLOUR,
            fontweight="bold",
        )
    shared = main_values + (input_values if input_axes is axes else [])
    if metrics.threshold is not None:
        shared.append(metrics.threshold)
    _y_limits(axes, shared)
    if input_axes is not axes:
        _y_limits(input_axes, input_values)

    changed = as_utc(metrics.changed_at)
    start, end = as_utc(metrics.start), as_utc(metrics.end)
    window = timedelta(seconds=metrics.evaluation_window_seconds or metrics.period)
    handles.append(
        axes.axvspan(
            max(changed - window, start),  # type: ignore[arg-type]  # converted as dates
            changed,  # type: ignore[arg-type]
            color=WINDOW_COLOUR,
            alpha=0.35,
            linewidth=0,
            label=f"alarm window ({_duration(window)})",
            zorder=0,
        )
    )
    handles.append(
        axes.axvline(
            changed,  # type: ignore[arg-type]  # converted as dates
            color=CHANGE_COLOUR,
            linewidth=1.2,
            label=f"state change {changed:%H:%M:%S} UTC",
            zorder=2,
        )
    )
    axes.set_xlim(start, end)  # type: ignore[arg-type]  # matplotlib converts datetimes
    return handles


def _decorate(axes: Axes, metrics: AlarmMetrics, handles: list[Artist]) -> None:
    """Title, UTC time axis, grid and legend."""
    start = as_utc(metrics.start)
    axes.set_title(metrics.alarm_name, loc="left", fontsize=13, fontweight="bold")
    axes.set_title(f"{start:%Y-%m-%d} · period {_duration(timedelta(seconds=metrics.period))}",
                   loc="right", fontsize=9, color="#495057")  # fmt: skip
    _utc_time_axis(axes)
    axes.set_xlabel("UTC", fontsize=9, color="#495057")
    axes.tick_params(labelsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6))
    axes.grid(True, color="#dee2e6", linewidth=0.7)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    # Below the plot, never over it: inside, even "best" hides a line on a small graph or
    # when the metric fills every corner. In as many columns as fit the width, measured.
    figure = axes.get_figure(root=True)
    assert isinstance(figure, Figure)
    width_px = figure.bbox.width
    labels = [_short(str(h.get_label()), int(width_px / _PX_PER_CHAR)) for h in handles]
    for columns in range(len(handles), 0, -1):
        legend = figure.legend(
            handles, labels, loc="outside lower center", ncols=columns, fontsize=8, frameon=False
        )
        figure.draw_without_rendering()
        if columns == 1 or legend.get_window_extent().width <= width_px - 8:
            return
        legend.remove()


def _utc_time_axis(axes: Axes) -> None:
    """HH:MM ticks in UTC, 4 to 10 of them at round minutes. (matplotlib.dates carries no
    type annotations: these are its only calls.)"""
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = mdates.DateFormatter("%H:%M", tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)


def _line(axes: Axes, points: _Points, colour: str, width: float, alpha: float = 1.0) -> Artist:
    label = points.series.label or points.series.id
    if not points.values:
        # Kept in the legend, so a reader sees the series exists and returned nothing.
        (line,) = axes.plot([], [], color=colour, linewidth=width, label=f"{label}: no datapoints")
        return line
    marker = "o" if len(points.values) <= 30 else None
    (line,) = axes.plot(
        points.times,  # type: ignore[arg-type]  # matplotlib converts datetimes
        points.values,
        color=colour,
        linewidth=width,
        alpha=alpha,
        marker=marker,
        markersize=3.5 if marker else 0,
        label=label,
        zorder=4 if points.series.compared else 3,
    )
    return line


def _finite(series: MetricSeries) -> _Points:
    """The series without NaN or infinite values, which matplotlib would draw as gaps or
    blow the y axis up with."""
    pairs = [
        (as_utc(t), v)
        for t, v in zip(series.timestamps, series.values, strict=False)
        if math.isfinite(v)
    ]
    return _Points(series, [t for t, _ in pairs], [v for _, v in pairs])


def _same_scale(main: list[float], other: list[float]) -> bool:
    top, other_top = max(abs(v) for v in main), max(abs(v) for v in other)
    if top == 0 or other_top == 0:
        return top == other_top
    return 1 / SAME_SCALE <= other_top / top <= SAME_SCALE


def _y_limits(axes: Axes, values: list[float]) -> None:
    """From zero for a metric that never goes negative (CPU, counts, bytes), so a small rise
    does not look like a cliff; with headroom, so the threshold and the peak are never on the
    frame."""
    low, high = min(values), max(values)
    if low >= 0:
        low = 0.0
    span = high - low or abs(high) or 1.0
    axes.set_ylim(low - (0.05 * span if low < 0 else 0), high + 0.12 * span)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _number(value: float) -> str:
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _short(label: str, room: int) -> str:
    """The label cut to what one legend row of the graph's width can show."""
    limit = max(16, min(_LEGEND_LABEL, room - 6))
    return label if len(label) <= limit else label[: limit - 1] + "…"
