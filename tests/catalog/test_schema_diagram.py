"""The layout of a relational schema's diagram (pure: no Django): boxes apart, arrows downwards from parent to
child, labels clear of the boxes and of each other."""

from __future__ import annotations

import copy

import pytest

from marketplace.catalog.schema_diagram import SHOWN_COLUMNS, Diagram, key_marks, layout
from marketplace.datasets.randhie import METADATA


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _clear(diagram: Diagram) -> None:
    boxes = [(b.x, b.y, b.x + b.width, b.y + b.height) for b in diagram.boxes]
    labels = [
        (e.label_left, e.label_top, e.label_left + e.label_width, e.label_top + 16) for e in diagram.edges
    ]
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert not any(_overlap(a, b) for a in labels for b in boxes)
    assert not any(_overlap(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])
    assert all(
        0 <= x0 and x1 <= diagram.width and 0 <= y0 and y1 <= diagram.height for x0, y0, x1, y1 in boxes
    )


def test_the_demo_schema_puts_both_parents_above_their_child():
    diagram = layout(METADATA)

    layers = {box.name: box.layer for box in diagram.boxes}
    assert layers == {"plans": 0, "persons": 0, "years": 1}
    assert [(e.parent, e.child, e.child_column) for e in diagram.edges] == [
        ("persons", "years", "person_id"),
        ("plans", "years", "plan_id"),
    ]
    years = next(box for box in diagram.boxes if box.name == "years")
    assert [(row.mark, row.name) for row in years.rows] == [
        ("PK", "year_id"),
        ("FK", "person_id"),
        ("FK", "plan_id"),
        ("", "year"),
        ("", "mdvis"),
    ]
    _clear(diagram)
    assert diagram.width <= 390 - 2 * 24  # the whole drawing fits a phone at full size


def test_a_chain_a_shared_parent_and_a_key_that_is_also_a_foreign_key():
    metadata = {
        "tables": {
            "airports": {"primary_key": "faa", "columns": {"faa": {"sdtype": "id"}, "name": {}}},
            "flights": {
                "primary_key": "flight_id",
                "columns": {"flight_id": {}, "origin": {}, "dest": {}, "tailnum": {}},
            },
            "planes": {"primary_key": "tailnum", "columns": {"tailnum": {}, "year": {}}},
            "delays": {"primary_key": "flight_id", "columns": {"flight_id": {}, "minutes": {}}},
        },
        "relationships": [
            {"parent_table_name": p, "parent_primary_key": k, "child_table_name": c, "child_foreign_key": f}
            for p, k, c, f in [
                ("airports", "faa", "flights", "origin"),
                ("airports", "faa", "flights", "dest"),
                ("planes", "tailnum", "flights", "tailnum"),
                ("flights", "flight_id", "delays", "flight_id"),
            ]
        ],
    }

    diagram = layout(metadata)

    assert {box.name: box.layer for box in diagram.boxes} == {
        "airports": 0,
        "planes": 0,
        "flights": 1,
        "delays": 2,
    }
    assert key_marks(metadata)["delays"] == {"flight_id": "PK FK"}
    assert len(diagram.edges) == 4 and len({e.key for e in diagram.edges}) == 4
    _clear(diagram)


@pytest.mark.parametrize("extra", [0, 5, 40])
def test_a_wide_table_lists_its_keys_and_counts_the_rest(extra):
    metadata = copy.deepcopy(METADATA)
    for index in range(extra):
        metadata["tables"]["years"]["columns"][f"measure_{index}"] = {"sdtype": "numerical"}

    years = next(box for box in layout(metadata).boxes if box.name == "years")

    shown = [row for row in years.rows if not row.is_more]
    assert [row.name for row in shown][:3] == ["year_id", "person_id", "plan_id"]
    assert len(shown) == min(5 + extra, SHOWN_COLUMNS)
    more = [row.name for row in years.rows if row.is_more]
    assert more == ([f"+ {5 + extra - SHOWN_COLUMNS} more columns"] if 5 + extra > SHOWN_COLUMNS else [])
