"""`labels import` of spans and boxes: JSON lists (or Parquet lists of structs) checked
against their items as the labeling app checks a labeler's, stored as it stores them; a bad
one names the file's row and the field, and nothing is written (labeling.annotations
.import_check, store.labels.import_labels)."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from active_labeling.cli import main

from media_helpers import TEXTS, folder_project, spans_of, spans_project


def _write_csv(path, rows, header=("id", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _stored(project):
    with project.connect(read_only=True) as con:
        return dict(con.execute("SELECT item_id, label FROM current_labels").fetchall())


def _events(project):
    with project.connect(read_only=True) as con:
        return con.execute("SELECT count(*) FROM label_events").fetchone()[0]


def test_spans_import_from_csv_is_stored_in_text_order(tmp_path, capsys):
    project = spans_project(tmp_path / "p")
    rows = [(f"t{i}", json.dumps(spans_of(t[1])[::-1])) for i, t in enumerate(TEXTS[:4])]
    code = main(["labels", "import", str(project.root), str(_write_csv(tmp_path / "s.csv", rows))])
    assert code == 0, capsys.readouterr().err
    stored = _stored(project)
    assert {i: json.loads(v) for i, v in stored.items()} == {
        f"t{i}": spans_of(t[1]) for i, t in enumerate(TEXTS[:4])
    }


@pytest.mark.parametrize(
    "label, message",
    [
        ('[{"start": 1, "end": 3, "label": "PER"}]', "spans[0].start: 1 is not where a token"),
        ('[{"start": 0, "end": 3, "label": "ORG"}]', "spans[0].label: 'ORG'"),
        ('[{"start": 0, "end": 99, "label": "PER"}]', "spans[0].end: 99 is beyond the text"),
        ("PER", "is not a JSON list of spans"),
    ],
)
def test_a_bad_span_names_the_row_and_item_and_nothing_is_written(tmp_path, capsys, label, message):
    project = spans_project(tmp_path / "p")
    good = json.dumps(spans_of(TEXTS[0][1]))
    path = _write_csv(tmp_path / "s.csv", [("t0", good), ("t1", good[:0] or "[]"), ("t2", label)])
    assert main(["labels", "import", str(project.root), str(path)]) == 1
    err = capsys.readouterr().err
    assert "s.csv row 3 (item 't2')" in err and message in err, err
    assert _events(project) == 0


def test_boxes_import_from_parquet_lists_and_a_box_outside_the_image_is_refused(tmp_path, capsys):
    project = folder_project(tmp_path / "b", "boxes")  # sub/img0.png is 64 x 48
    box = pa.struct(
        [
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("w", pa.float64()),
            ("h", pa.float64()),
            ("label", pa.string()),
        ]
    )
    table = pa.table(
        {
            "id": ["sub/img0.png", "img1.jpg"],
            "label": pa.array(
                [[{"x": 1, "y": 2, "w": 30, "h": 20, "label": "cat"}], []], pa.list_(box)
            ),
        }
    )
    pq.write_table(table, tmp_path / "boxes.parquet")
    assert main(["labels", "import", str(project.root), str(tmp_path / "boxes.parquet")]) == 0
    stored = _stored(project)
    assert json.loads(stored["sub/img0.png"]) == [
        {"x": 1.0, "y": 2.0, "w": 30.0, "h": 20.0, "label": "cat"}
    ]
    assert json.loads(stored["img1.jpg"]) == []
    before = _events(project)
    outside = json.dumps([{"x": 50, "y": 2, "w": 30, "h": 20, "label": "dog"}])
    path = _write_csv(tmp_path / "b.csv", [("img2.png", "[]"), ("sub/img0.png", outside)])
    assert main(["labels", "import", str(project.root), str(path)]) == 1
    err = capsys.readouterr().err
    assert "b.csv row 2 (item 'sub/img0.png'): boxes[0]: x + w = 80 is outside the image" in err
    assert _events(project) == before


def test_an_export_imports_back_into_a_project_of_the_same_folder(tmp_path, capsys):
    source = folder_project(tmp_path / "a", "boxes")
    boxes = {
        "sub/img0.png": [{"x": 0.5, "y": 0.5, "w": 10.25, "h": 12, "label": "dog"}],
        "img1.jpg": [{"x": 1, "y": 2, "w": 30, "h": 20, "label": "cat"}],
    }
    path = _write_csv(tmp_path / "in.csv", [(k, json.dumps(v)) for k, v in boxes.items()])
    assert main(["labels", "import", str(source.root), str(path)]) == 0
    out = tmp_path / "labels.csv"
    assert main(["labels", "export", str(source.root), str(out), "--format", "csv"]) == 0
    target = folder_project(tmp_path / "c", "boxes")
    code = main(["labels", "import", str(target.root), str(out), "--id-column", "item_id"])
    assert code == 0, capsys.readouterr().err
    assert _stored(target) == _stored(source)


def test_an_export_with_disputed_items_imports_the_rest_and_says_so(tmp_path, capsys):
    from active_labeling.store.labels import LabelEvent, append_events

    source = spans_project(tmp_path / "a")
    ada = spans_of(TEXTS[0][1])
    with source.connect() as con:
        append_events(
            con,
            [
                LabelEvent("texts", "t0", "labeled", "ann", label=json.dumps(ada)),
                LabelEvent("texts", "t0", "labeled", "bob", label=json.dumps(ada[:1])),
                LabelEvent(
                    "texts", "t1", "labeled", "ann", label=json.dumps(spans_of(TEXTS[1][1]))
                ),
            ],
        )
    out = tmp_path / "labels.csv"
    assert main(["labels", "export", str(source.root), str(out)]) == 0
    target = spans_project(tmp_path / "b")
    capsys.readouterr()
    assert main(["labels", "import", str(target.root), str(out), "--id-column", "item_id"]) == 0
    said = capsys.readouterr().out
    assert "imported 1 labels" in said and "1 disputed items of the export left out" in said
    assert set(_stored(target)) == {"t1"}
