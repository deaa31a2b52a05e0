"""The schema diagram of a relational version (issue 20): its tables as boxes listing their columns (primary
and foreign keys marked) and one arrow per foreign key, parent → child, labelled with the child's column.

``layout(metadata)`` takes SDV multi-table metadata and returns where everything goes, in SVG user units
(pixels at scale 1); ``templates/catalog/_schema_diagram.html`` draws it server-side (no script, no CDN).
Tables are placed in layers: a table with no parent on top, every other table one layer below its deepest
parent, so every arrow points down. Pure: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

# Column names are drawn in a 12 px monospace face: 7.3 px a character is what Chromium and Firefox give it.
CHARACTER = 7.3
HEADER_CHARACTER = 8.0  # the table's name: 13 px bold sans-serif, a little wider on average
LABEL_CHARACTER = 6.7  # arrow labels: 11 px monospace
ROW = 18
HEADER = 26
PADDING = 10
GAP_X = 32
GAP_Y = 76
MARGIN = 12
MINIMUM_WIDTH = 120
# A box lists at most this many columns (every key among them); the rest are counted on one last line.
SHOWN_COLUMNS = 12


@dataclass(frozen=True)
class Row:
    """One line of a box: a column with its key marks ("PK", "FK", "PK FK" or ""), or the count of the
    columns not shown (``name`` is then "+ N more columns" and ``is_more`` is true)."""

    name: str
    mark: str
    sdtype: str
    mark_x: float
    name_x: float
    y: float
    is_more: bool = False


@dataclass(frozen=True)
class Box:
    name: str
    x: float
    y: float
    width: float
    height: float
    layer: int
    column_count: int
    rows: tuple[Row, ...]

    @property
    def center(self) -> float:
        return self.x + self.width / 2

    @property
    def title_x(self) -> float:
        return self.x + PADDING

    @property
    def title_y(self) -> float:
        return self.y + HEADER - 8

    @property
    def header_path(self) -> str:
        """The header band: the box's top with its rounded corners, down to the rule under the name."""
        return (
            f"M{self.x},{self.y + HEADER} v-{HEADER - 6} a6,6 0 0 1 6,-6 h{self.width - 12} "
            f"a6,6 0 0 1 6,6 v{HEADER - 6} z"
        )


@dataclass(frozen=True)
class Edge:
    """One foreign key: ``child.child_column`` refers to ``parent.parent_column``. ``path`` is an SVG path
    from the parent's bottom to the child's top; the label (the child's column) is centred on
    (``label_x``, ``label_y``) over a ``label_width`` wide backdrop."""

    parent: str
    parent_column: str
    child: str
    child_column: str
    path: str
    label_x: float
    label_y: float
    label_width: float

    @property
    def key(self) -> str:
        return f"{self.child}.{self.child_column}→{self.parent}.{self.parent_column}"

    @property
    def label_left(self) -> float:
        return round(self.label_x - self.label_width / 2, 1)

    @property
    def label_top(self) -> float:
        return round(self.label_y - 8, 1)

    @property
    def label_baseline(self) -> float:
        return round(self.label_y + 4, 1)


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]

    @property
    def minimum_width(self) -> int:
        """The narrowest the drawing may be shrunk to and stay legible (10 px text); a narrower screen
        scrolls it sideways."""
        return int(self.width * 0.8)

    @property
    def maximum_width(self) -> int:
        """The widest it is drawn: a quarter larger than its units, so 12 px text reads as the page's 15 px."""
        return int(self.width * 1.25)


def _relationships(metadata: dict[str, Any]) -> list[dict[str, str]]:
    tables = metadata.get("tables", {})
    return [
        r
        for r in metadata.get("relationships", [])
        if r.get("parent_table_name") in tables and r.get("child_table_name") in tables
    ]


def key_marks(metadata: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per table, per key column: "PK", "FK" or "PK FK" (a child whose key is also its parent's)."""
    marks: dict[str, dict[str, list[str]]] = {name: {} for name in metadata.get("tables", {})}
    for name, table in metadata.get("tables", {}).items():
        if table.get("primary_key"):
            marks[name].setdefault(str(table["primary_key"]), []).append("PK")
    for relationship in _relationships(metadata):
        column = relationship["child_foreign_key"]
        found = marks[relationship["child_table_name"]].setdefault(column, [])
        if "FK" not in found:
            found.append("FK")
    return {
        name: {column: " ".join(kinds) for column, kinds in columns.items()}
        for name, columns in marks.items()
    }


def _layers(metadata: dict[str, Any]) -> dict[str, int]:
    """Each table's layer: 0 without a parent, else one more than its deepest parent's. A cycle (refused
    before any version is stored) cannot loop: depths stop growing past the number of tables."""
    names = list(metadata.get("tables", {}))
    layer = dict.fromkeys(names, 0)
    for _ in names:
        changed = False
        for relationship in _relationships(metadata):
            parent, child = relationship["parent_table_name"], relationship["child_table_name"]
            if parent != child and layer[child] < layer[parent] + 1 <= len(names):
                layer[child] = layer[parent] + 1
                changed = True
        if not changed:
            break
    return layer


def _rows(columns: dict[str, Any], marks: dict[str, str]) -> list[tuple[str, str, str]]:
    """The (name, mark, sdtype) lines of a box: every key, then the other columns in order, up to
    ``SHOWN_COLUMNS`` in all, kept in the table's own order."""
    names = list(columns)
    shown = set(marks) & set(names)
    for name in names:
        if len(shown) >= SHOWN_COLUMNS:
            break
        shown.add(name)
    return [
        (name, marks.get(name, ""), str((columns.get(name) or {}).get("sdtype", "")))
        for name in names
        if name in shown
    ]


def _box_size(name: str, lines: list[tuple[str, str, str]], more: int) -> tuple[float, float, float]:
    """(width, height, mark column width) of a box."""
    mark_width = max((len(mark) for _, mark, _ in lines), default=0) * CHARACTER
    mark_width = mark_width + 6 if mark_width else 0
    widest = max([len(column) for column, _, _ in lines] + [len(f"+ {more} more columns") if more else 0])
    width = max(
        MINIMUM_WIDTH,
        2 * PADDING + mark_width + widest * CHARACTER,
        2 * PADDING + len(name) * HEADER_CHARACTER,
    )
    height = HEADER + 6 + ROW * (len(lines) + (1 if more else 0))
    return round(width), height, mark_width


def _order(layers: dict[str, int], metadata: dict[str, Any]) -> list[list[str]]:
    """Tables per layer, left to right: the top layer in the metadata's order, each lower table under the
    mean position of its parents (fewer crossing arrows)."""
    by_layer: list[list[str]] = [[] for _ in range(max(layers.values(), default=-1) + 1)]
    for name, index in layers.items():
        by_layer[index].append(name)
    position = {name: float(i) for i, name in enumerate(by_layer[0] if by_layer else [])}
    for layer in by_layer[1:]:
        parents = {
            name: [
                position[r["parent_table_name"]]
                for r in _relationships(metadata)
                if r["child_table_name"] == name and r["parent_table_name"] in position
            ]
            for name in layer
        }
        layer.sort(key=lambda name: sum(parents[name]) / len(parents[name]) if parents[name] else 0.0)
        position.update({name: float(i) for i, name in enumerate(layer)})
    return by_layer


def _place(metadata: dict[str, Any]) -> tuple[list[Box], float, float]:
    marks = key_marks(metadata)
    by_layer = _order(_layers(metadata), metadata)
    sizes = {}
    for name, table in metadata.get("tables", {}).items():
        columns = table.get("columns", {})
        lines = _rows(columns, marks.get(name, {}))
        sizes[name] = (lines, len(columns) - len(lines), *_box_size(name, lines, len(columns) - len(lines)))
    widths = [sum(sizes[n][2] for n in layer) + GAP_X * (len(layer) - 1) for layer in by_layer]
    total_width = max(widths, default=0) + 2 * MARGIN
    boxes, y = [], float(MARGIN)
    for index, layer in enumerate(by_layer):
        x = (total_width - widths[index]) / 2
        for name in layer:
            lines, more, width, height, mark_width = sizes[name]
            baseline = y + HEADER + ROW - 1
            rows = [
                Row(column, mark, sdtype, x + PADDING, x + PADDING + mark_width, baseline + ROW * i)
                for i, (column, mark, sdtype) in enumerate(lines)
            ]
            if more:
                more_text = f"+ {more} more columns"
                rows.append(
                    Row(more_text, "", "", x + PADDING, x + PADDING, baseline + ROW * len(lines), True)
                )
            column_count = len(metadata["tables"][name].get("columns", {}))
            boxes.append(Box(name, x, y, width, height, index, column_count, tuple(rows)))
            x += width + GAP_X
        y += max(sizes[n][3] for n in layer) + GAP_Y
    return boxes, total_width, y - GAP_Y + MARGIN


def _spread(box: Box, count: int, index: int) -> float:
    """The x of the ``index``-th of ``count`` arrows leaving (or reaching) ``box``, evenly across it."""
    return box.x + box.width * (index + 1) / (count + 1)


def _edges(metadata: dict[str, Any], boxes: dict[str, Box]) -> list[Edge]:
    relationships = _relationships(metadata)
    leaving: dict[str, list[dict[str, str]]] = {}
    reaching: dict[str, list[dict[str, str]]] = {}
    for r in relationships:
        leaving.setdefault(r["parent_table_name"], []).append(r)
        reaching.setdefault(r["child_table_name"], []).append(r)
    for items in leaving.values():
        items.sort(key=lambda r: (boxes[r["child_table_name"]].center, r["child_foreign_key"]))
    for items in reaching.values():
        items.sort(key=lambda r: (boxes[r["parent_table_name"]].center, r["child_foreign_key"]))
    edges = []
    for r in relationships:
        parent, child = boxes[r["parent_table_name"]], boxes[r["child_table_name"]]
        source_x = _spread(parent, len(leaving[parent.name]), leaving[parent.name].index(r))
        target_x = _spread(child, len(reaching[child.name]), reaching[child.name].index(r))
        source_y, target_y = parent.y + parent.height, child.y - 2
        bend = (target_y - source_y) / 2
        label = r["child_foreign_key"]
        edges.append(
            Edge(
                parent=parent.name,
                parent_column=r.get("parent_primary_key", ""),
                child=child.name,
                child_column=label,
                path=(
                    f"M{source_x:.1f},{source_y:.1f} C{source_x:.1f},{source_y + bend:.1f} "
                    f"{target_x:.1f},{target_y - bend:.1f} {target_x:.1f},{target_y:.1f}"
                ),
                label_x=round((source_x + target_x) / 2, 1),
                label_y=round((source_y + target_y) / 2, 1),
                label_width=round(len(label) * LABEL_CHARACTER + 10, 1),
            )
        )
    return _separate_labels(edges)


def _separate_labels(edges: list[Edge]) -> list[Edge]:
    """Labels in the same gap between layers that would overlap are moved down one line, then the next."""
    placed: list[Edge] = []
    for edge in edges:
        y = edge.label_y
        while any(
            abs(other.label_y - y) < 15
            and abs(other.label_x - edge.label_x) < (other.label_width + edge.label_width) / 2 + 4
            for other in placed
        ):
            y += 16
        placed.append(replace(edge, label_y=y))
    return placed


def layout(metadata: dict[str, Any]) -> Diagram:
    """Where the boxes, arrows and labels of ``metadata``'s schema go. Units are pixels at scale 1."""
    boxes, width, height = _place(metadata)
    by_name = {box.name: box for box in boxes}
    return Diagram(
        width=round(width), height=round(height), boxes=tuple(boxes), edges=tuple(_edges(metadata, by_name))
    )
