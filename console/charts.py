"""The reports' charts as SVG, drawn on the server by Matplotlib (no script, no CDN).

Text stays text in the SVG (``svg.fonttype: none``): the officer's browser draws the Chinese
with its own fonts, so the server needs none. Each chart is one pure function, figures in,
SVG out; Matplotlib's object interface (no ``pyplot`` state) keeps them safe in threads.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("svg")
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .i18n import N_

__all__ = ["ACK_BUCKETS", "bars", "stacked"]

matplotlib.rcParams.update({
    "svg.fonttype": "none", "font.size": 10, "axes.spines.top": False,
    "axes.spines.right": False, "svg.hashsalt": "console",
    "font.family": ["DejaVu Sans"],  # its metrics lay the chart out; the browser draws it
})
BROWSER_FONTS = ("'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', "
                 "'WenQuanYi Micro Hei', sans-serif")
ACK_BUCKETS = ((60, N_("< 1 min")), (120, N_("1–2 min")), (300, N_("2–5 min")),
               (600, N_("5–10 min")), (1800, N_("10–30 min")), (3600, N_("30–60 min")),
               (float("inf"), N_("> 60 min")))
COLOURS = ("#1e7a3a", "#2f6db3", "#b3261e", "#8a8f98", "#e0a526", "#6b4fa3")


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    with warnings.catch_warnings():  # Chinese glyphs are the browser's to draw, not ours
        warnings.filterwarnings("ignore", "Glyph .* missing from font")
        figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    return out.getvalue().replace("'DejaVu Sans'", BROWSER_FONTS)


def bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]],
         width: float = 7.5) -> str:
    """Grouped vertical bars: one group per label, one bar per series."""
    figure = Figure(figsize=(width, 3.0))
    axes = figure.add_subplot()
    names = list(series)
    step = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        offsets = [x - 0.4 + step * (i + 0.5) for x in range(len(labels))]
        axes.bar(offsets, series[name], width=step, label=name, color=COLOURS[i % len(COLOURS)])
    axes.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 8 else 0,
                    ha="right" if len(labels) > 8 else "center")
    axes.set_title(title, loc="left")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(names) > 1:
        axes.legend(frameon=False, ncols=len(names), loc="upper right")
    return _svg(figure)


def stacked(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Horizontal bars, one per label, each stacked from the series in order."""
    height = 1.2 + 0.35 * max(1, len(labels))
    figure = Figure(figsize=(7.5, height))
    axes = figure.add_subplot()
    left = [0.0] * len(labels)
    for i, (name, values) in enumerate(series.items()):
        axes.barh(range(len(labels)), values, left=left, label=name,
                  color=COLOURS[i % len(COLOURS)])
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_yticks(range(len(labels)), labels)
    axes.invert_yaxis()
    axes.set_title(title, loc="left")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(frameon=False, ncols=min(len(series), 5), loc="lower right",
                bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def buckets(values: Sequence[float], label: Callable[[str], str]) -> tuple[list[str], list[int]]:
    """Times to acknowledgement counted into :data:`ACK_BUCKETS`."""
    counts = [0] * len(ACK_BUCKETS)
    for v in values:
        counts[next(i for i, (limit, _) in enumerate(ACK_BUCKETS) if v < limit)] += 1
    return [label(name) for _, name in ACK_BUCKETS], counts
