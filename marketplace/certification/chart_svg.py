"""The certificate's charts as SVG, drawn by matplotlib from the certificate's ``charts`` section.

Pure: no Django. Input is the already privacy-safe aggregates of ``engine/charts.py`` (shares per bin or
category, Pearson matrices, DCR histograms); output is standalone ``<svg>`` markup with axes, ticks,
labels and a legend, text kept as text (searchable, printable, small). matplotlib (and numpy under it) is
imported inside ``render_charts`` only: the web process reads stored SVG and never loads either.
Column names reach the SVG only as text nodes, which matplotlib's SVG writer escapes.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REAL_COLOR = "#64748b"
SYNTHETIC_COLOR = "#2563eb"
HOLDOUT_COLOR = "#2563eb"
# About the width of a chart panel on a desktop page, so 10 pt text shows near 10 pt (and ~8 pt at 390 px).
WIDTH_INCHES = 5.6
# Category and column names are wrapped onto lines of this many characters (whole, never shortened).
LABEL_LINE_CHARACTERS = 20

CORRELATIONS_REAL = "correlations-real"
CORRELATIONS_SYNTHETIC = "correlations-synthetic"
DCR = "dcr"


def marginal_key(index: int) -> str:
    """The key of the ``index``-th marginal chart (position in ``charts.marginals``)."""
    return f"marginal-{index}"


def render_charts(charts: dict[str, Any]) -> dict[str, str]:
    """Every chart of a certificate's ``charts`` section as SVG markup, keyed by chart key.

    Keys: ``marginal-<i>`` per entry of ``marginals`` (withheld ones skipped), ``correlations-real`` and
    ``correlations-synthetic`` when there are at least two correlated columns, ``dcr`` when the section
    has the distance histograms. Deterministic for the same input (fixed SVG ids and no dates).
    """
    if not _has_charts(charts):
        return {}
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import rcParams

    rcParams.update(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "synthex",
            "font.family": "DejaVu Sans",
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    rendered: dict[str, str] = {}
    for index, marginal in enumerate(charts.get("marginals") or []):
        figure = _marginal_figure(marginal)
        if figure is not None:
            key = marginal_key(index)
            rendered[key] = _to_svg(figure, key)
    correlations = charts.get("correlations") or {}
    columns = list(correlations.get("columns") or [])
    if len(columns) >= 2:
        for key, which in ((CORRELATIONS_REAL, "real"), (CORRELATIONS_SYNTHETIC, "synthetic")):
            matrix = correlations.get(which) or []
            if matrix:
                rendered[key] = _to_svg(
                    _heatmap_figure(matrix, columns, f"Pearson correlation, {which}"), key
                )
    dcr = charts.get("dcr")
    if dcr and dcr.get("bin_edges"):
        rendered[DCR] = _to_svg(_dcr_figure(dcr), DCR)
    return rendered


def _has_charts(charts: dict[str, Any]) -> bool:
    return bool(
        charts.get("marginals") or (charts.get("correlations") or {}).get("columns") or charts.get("dcr")
    )


def _to_svg(figure: Figure, key: str) -> str:
    """The figure as inline ``<svg>`` markup: sized by CSS from its viewBox; only the ids something refers
    to are kept, prefixed with ``key`` (a page holds many charts, and clip paths and markers are found by
    id); without the ``<style>`` element (the page's CSP allows style attributes, not style elements), the
    RDF metadata or indentation."""
    from matplotlib import pyplot

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    pyplot.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    text = re.sub(r"<defs>\s*<style[^>]*>.*?</style>\s*</defs>\s*", "", text, flags=re.DOTALL)
    referenced = set(re.findall(r'(?:url\(#|xlink:href="#)([^)"]+)', text))
    text = re.sub(
        r' id="([^"]*)"',
        lambda found: f' id="{key}-{found.group(1)!s}"' if found.group(1) in referenced else "",
        text,
    )
    text = text.replace("url(#", f"url(#{key}-").replace('xlink:href="#', f'xlink:href="#{key}-')
    text = re.sub(r"\n\s+", "\n", text)
    text = _GEOMETRY.sub(lambda found: found[1] + _compact(found[2]) + '"', text)
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="mpl-chart" role="img"', text, count=1
    )


# Attributes holding only coordinates: their numbers are rounded to hundredths of a point (matplotlib writes
# six decimals), which keeps a page of charts about half as heavy with no visible change. Text is untouched.
_GEOMETRY = re.compile(r'(\s(?:d|x|y|x1|y1|x2|y2|width|height|transform|viewBox)=")([^"]*)"')
_LONG_DECIMAL = re.compile(r"(-?\d+\.\d\d)\d+")


def _compact(value: str) -> str:
    return " ".join(_LONG_DECIMAL.sub(r"\1", value).split())


def _wrapped(label: str) -> str:
    """The whole label, broken into lines of at most ``LABEL_LINE_CHARACTERS`` (never cut short)."""
    return "\n".join(textwrap.wrap(label, LABEL_LINE_CHARACTERS, break_long_words=True)) or label


def _percent_axis(axis: Any) -> None:
    """Shares as percentages on ``axis`` (an x or y axis), with light grid lines across the plot."""
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axis.axes.grid(axis="x" if axis is axis.axes.xaxis else "y", color="#e5e7eb", linewidth=0.6)
    axis.axes.set_axisbelow(True)


def _legend(axes: Any) -> None:
    """Above the plot, right-aligned: never over a bar."""
    axes.legend(frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, borderaxespad=0.2)


def _marginal_figure(marginal: dict[str, Any]) -> Figure | None:
    if marginal.get("kind") == "categories" and marginal.get("labels"):
        return _categories_figure(marginal)
    if marginal.get("kind") == "histogram" and len(marginal.get("bin_edges") or []) >= 2:
        return _histogram_figure(
            marginal["bin_edges"],
            [(marginal["real"], "real", REAL_COLOR), (marginal["synthetic"], "synthetic", SYNTHETIC_COLOR)],
            xlabel=str(marginal["column"]),
            ylabel="share of rows",
            open_ended=bool(marginal.get("open_ended")),
        )
    return None


def _categories_figure(marginal: dict[str, Any]) -> Figure:
    """Grouped horizontal bars, one pair per category in the certificate's order (most frequent on top):
    the category names read horizontally on the y axis, whole, however many there are."""
    from matplotlib.figure import Figure

    labels = [_wrapped(str(label)) for label in marginal["labels"]]
    # Each category gets a slot as tall as its label's lines need (one bar pair fits one or two lines).
    slots = [max(1.0, 0.5 * (label.count("\n") + 1)) for label in labels]
    positions = [sum(slots[:index]) + slot / 2 for index, slot in enumerate(slots)]
    figure = Figure(figsize=(WIDTH_INCHES, 1.1 + 0.28 * sum(slots)))
    axes = figure.subplots()
    height = 0.4
    axes.barh([p - height / 2 for p in positions], marginal["real"], height, label="real", color=REAL_COLOR)
    axes.barh(
        [p + height / 2 for p in positions],
        marginal["synthetic"],
        height,
        label="synthetic",
        color=SYNTHETIC_COLOR,
    )
    axes.set_yticks(positions, labels)
    axes.set_ylim(sum(slots), 0)
    axes.set_ylabel(_wrapped(str(marginal["column"])))
    axes.set_xlabel("share of rows")
    _percent_axis(axes.xaxis)
    _legend(axes)
    return figure


def _histogram_figure(
    edges: Sequence[float],
    series: Sequence[tuple[Sequence[float], str, str]],
    *,
    xlabel: str,
    ylabel: str,
    open_ended: bool,
) -> Figure:
    """Step-outlined bars over the bins' numeric edges, one series per (shares, label, colour)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_INCHES, 3.0))
    axes = figure.subplots()
    for index, (shares, label, color) in enumerate(series):
        filled = index == 0
        axes.stairs(
            shares,
            edges,
            label=label,
            color=color,
            fill=filled,
            alpha=0.45 if filled else 1.0,
            linewidth=0 if filled else 1.8,
        )
    axes.set_xlim(edges[0], edges[-1])
    axes.set_xlabel(xlabel + (" (outer bins open-ended)" if open_ended else ""))
    axes.set_ylabel(ylabel)
    _percent_axis(axes.yaxis)
    _legend(axes)
    return figure


def _heatmap_figure(matrix: Sequence[Sequence[float | None]], columns: Sequence[str], title: str) -> Figure:
    from matplotlib.figure import Figure

    values = [[float("nan") if value is None else float(value) for value in row] for row in matrix]
    count = len(columns)
    labels = [_wrapped(str(column)) for column in columns]
    side = max(3.4, 0.42 * count + 1.4)
    figure = Figure(figsize=(side + 1.0, side))
    axes = figure.subplots()
    image = axes.imshow(values, cmap="RdBu", vmin=-1.0, vmax=1.0)
    axes.set_xticks(range(count), labels, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(count), labels)
    axes.spines[:].set_visible(False)
    if count <= 10:
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if value == value:
                    axes.text(
                        j,
                        i,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if abs(value) > 0.6 else "#111827",
                    )
    axes.set_title(title)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colorbar.set_label("Pearson r")
    return figure


def _dcr_figure(dcr: dict[str, Any]) -> Figure:
    """Counts per distance bin turned into shares of the synthetic rows (the last bin holds the farthest 1 %)."""
    series = [("synthetic_to_train", "synthetic → train", REAL_COLOR)]
    if dcr.get("synthetic_to_holdout"):
        series.append(("synthetic_to_holdout", "synthetic → holdout", HOLDOUT_COLOR))
    return _histogram_figure(
        dcr["bin_edges"],
        [(_shares(dcr[key]), label, color) for key, label, color in series],
        xlabel="distance to closest record (last bin open-ended)",
        ylabel="share of synthetic rows",
        open_ended=False,
    )


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts)) or 1.0
    return [count / total for count in counts]
