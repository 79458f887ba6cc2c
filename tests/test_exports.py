"""`labels export --format ...`: each export read back with its format's own reader."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pandas as pd
import pytest

from active_labeling.cli import main
from active_labeling.errors import InputError
from active_labeling.exports import export_labels_as
from active_labeling.models.spans import spans_from_tags
from active_labeling.store.labels import LabelEvent, append_events

from flow_helpers import make_project
from media_helpers import TEXTS, folder_project, spans_of, spans_project

#: Boxes per image of the folder project (image sizes 81x60, 66x48, 83x60, 64x48).
BOXES = {
    "img1.jpg": [
        {"x": 1, "y": 2, "w": 30, "h": 20, "label": "cat"},
        {"x": 40, "y": 10, "w": 41, "h": 50, "label": "dog"},
    ],
    "img2.png": [],
    "sub/img0.png": [{"x": 0.5, "y": 0.5, "w": 10.25, "h": 12, "label": "dog"}],
}


def _label(project, dataset, values: dict) -> None:
    with project.connect() as con:
        append_events(
            con,
            [
                LabelEvent(
                    dataset,
                    item,
                    "labeled",
                    "ann",
                    label=json.dumps(value) if not isinstance(value, str) else value,
                )
                for item, value in values.items()
            ],
        )


def _export(project, dataset, fmt, path):
    with project.connect(read_only=True) as con:
        return export_labels_as(con, project, dataset, fmt, path)


@pytest.fixture
def boxes(tmp_path):
    project = folder_project(tmp_path / "b", "boxes")
    _label(project, "media", BOXES)
    return project


@pytest.fixture
def spans(tmp_path):
    project = spans_project(tmp_path / "p")
    _label(project, "texts", {f"t{i}": spans_of(s) for i, (_, s) in enumerate(TEXTS)})
    return project


# --- boxes -----------------------------------------------------------------------------------


def test_coco_reads_back_with_pycocotools(boxes, tmp_path):
    coco_module = pytest.importorskip("pycocotools.coco")
    result = _export(boxes, "media", "coco", tmp_path / "out" / "coco.json")
    assert (result.items, result.annotations) == (3, 3)
    coco = coco_module.COCO(str(result.path))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert sorted(names.values()) == ["cat", "dog"]
    read = {}
    for image in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        read[image["item_id"]] = [
            {
                "x": a["bbox"][0],
                "y": a["bbox"][1],
                "w": a["bbox"][2],
                "h": a["bbox"][3],
                "label": names[a["category_id"]],
            }
            for a in anns
        ]
        assert image["file_name"] == f"media/{image['item_id']}"
    assert read == BOXES
    assert coco.loadImgs(coco.getImgIds())[0]["width"] == 81


def test_yolo_writes_normalized_centres_per_image_and_the_class_names(boxes, tmp_path):
    out = tmp_path / "yolo"
    result = _export(boxes, "media", "yolo", out)
    assert result.items == 3
    assert (out / "classes.txt").read_text().split() == ["cat", "dog"]
    assert 'names:\n  0: "cat"\n  1: "dog"' in (out / "data.yaml").read_text()
    assert (out / "labels" / "media" / "img2.txt").read_text() == ""  # labeled: nothing there
    sizes = {"img1.jpg": (81, 60), "sub/img0.png": (64, 48)}
    for item, (width, height) in sizes.items():
        stem = item.rsplit(".", 1)[0]
        lines = (out / "labels" / "media" / f"{stem}.txt").read_text().splitlines()
        read = []
        for line in lines:
            cls, cx, cy, w, h = line.split()
            w, h = float(w) * width, float(h) * height
            read.append(
                {
                    "x": float(cx) * width - w / 2,
                    "y": float(cy) * height - h / 2,
                    "w": w,
                    "h": h,
                    "label": ["cat", "dog"][int(cls)],
                }
            )
        for got, want in zip(read, BOXES[item], strict=True):
            assert got["label"] == want["label"]
            assert [got[k] for k in "xywh"] == pytest.approx([want[k] for k in "xywh"], abs=1e-3)


def test_voc_writes_one_xml_per_image_with_corners(boxes, tmp_path):
    out = tmp_path / "voc"
    _export(boxes, "media", "voc", out)
    tree = ElementTree.parse(out / "Annotations" / "media" / "img1.xml").getroot()
    assert tree.findtext("filename") == "img1.jpg" and tree.findtext("size/width") == "81"
    objects = [
        (
            o.findtext("name"),
            *(float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")),
        )
        for o in tree.findall("object")
    ]
    assert objects == [("cat", 1, 2, 31, 22), ("dog", 40, 10, 81, 60)]
    assert (
        ElementTree.parse(out / "Annotations" / "media" / "sub" / "img0.xml")
        .getroot()
        .findtext("object/bndbox/xmax")
        == "10.75"
    )


def test_a_folder_export_replaces_its_own_folder_but_never_a_folder_of_the_user(boxes, tmp_path):
    out = tmp_path / "yolo"
    _export(boxes, "media", "yolo", out)
    _export(boxes, "media", "yolo", out)  # again: it wrote that folder
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    with pytest.raises(InputError, match="an export did not write"):
        _export(boxes, "media", "voc", mine)
    assert (mine / "thesis.tex").read_text() == "keep me"


# --- spans -----------------------------------------------------------------------------------


def test_conll_reads_back_with_the_conllu_package_and_gives_the_spans(spans, tmp_path):
    conllu = pytest.importorskip("conllu")
    result = _export(spans, "texts", "conll", tmp_path / "ner.conll")
    assert (result.items, result.annotations) == (12, sum(len(s) for _, s in TEXTS))
    sentences = conllu.parse(result.path.read_text(encoding="utf-8"), fields=("form", "ner"))
    assert [s.metadata["item_id"] for s in sentences] == [f"t{i}" for i in range(12)]
    for sentence, (text, marked) in zip(sentences, TEXTS, strict=True):
        words = [t["form"] for t in sentence]
        assert " ".join(words) == text  # the test texts are space-separated tokens
        offsets, at = [], 0
        for word in words:
            offsets.append((at, at + len(word)))
            at += len(word) + 1
        assert spans_from_tags(offsets, [t["ner"] for t in sentence]) == spans_of(marked)
    assert sentences[0][0]["ner"] == "B-PER" and sentences[0][1]["ner"] == "I-PER"


def test_spacy_jsonl_reads_into_spacy_docs_with_the_same_entities(spans, tmp_path):
    spacy = pytest.importorskip("spacy", reason="spaCy is in the bench extra (heavy)")
    from spacy.tokens import DocBin
    from spacy.training import Example

    result = _export(spans, "texts", "spacy-jsonl", tmp_path / "ner.jsonl")
    nlp = spacy.blank("xx")  # a blank pipeline: no model is downloaded
    docs = DocBin()
    for line, (_, marked) in zip(
        result.path.read_text(encoding="utf-8").splitlines(), TEXTS, strict=True
    ):
        record = json.loads(line)
        example = Example.from_dict(
            nlp.make_doc(record["text"]), {"entities": [tuple(e) for e in record["entities"]]}
        )
        assert [(e.start_char, e.end_char, e.label_) for e in example.reference.ents] == marked
        docs.add(example.reference)
    again = list(DocBin().from_bytes(docs.to_bytes()).get_docs(nlp.vocab))
    assert [e.text for e in again[0].ents] == ["Ada Lovelace", "Charles Babbage", "London"]


def test_spans_keep_offsets_in_characters_for_non_ascii_text(tmp_path):
    text = "Zoë met 李小龍 in Zürich ."
    project = spans_project(tmp_path / "p", texts=[(text, [])])
    marked = [
        {"start": 0, "end": 3, "label": "PER"},
        {"start": 8, "end": 11, "label": "PER"},
        {"start": 15, "end": 21, "label": "LOC"},
    ]
    _label(project, "texts", {"t0": marked})
    record = json.loads(
        (_export(project, "texts", "spacy-jsonl", tmp_path / "x.jsonl").path).read_text(
            encoding="utf-8"
        )
    )
    assert [record["text"][s:e] for s, e, _ in record["entities"]] == ["Zoë", "李小龍", "Zürich"]


# --- Label Studio, CSV and Parquet -----------------------------------------------------------


def _check_label_studio_tasks(tasks):
    """The shape Label Studio imports (a schema-level check: its converter package pins old
    dependencies, so it is not installed)."""
    assert isinstance(tasks, list) and tasks
    for task in tasks:
        assert set(task) >= {"id", "data", "annotations"} and isinstance(task["data"], dict)
        for annotation in task["annotations"]:
            assert isinstance(annotation["result"], list)
            for result in annotation["result"]:
                assert set(result) >= {"from_name", "to_name", "type", "value"}


def test_label_studio_boxes_are_in_percent_with_the_image_size(boxes, tmp_path):
    result = _export(boxes, "media", "label-studio", tmp_path / "ls.json")
    tasks = json.loads(result.path.read_text())
    _check_label_studio_tasks(tasks)
    first = tasks[0]
    assert first["data"] == {"item_id": "img1.jpg", "image": "/media/media/img1.jpg"}
    box = first["annotations"][0]["result"][1]
    assert box["type"] == "rectanglelabels" and box["original_width"] == 81
    assert box["value"]["x"] == pytest.approx(100 * 40 / 81) and box["value"][
        "height"
    ] == pytest.approx(100 * 50 / 60)
    assert box["value"]["rectanglelabels"] == ["dog"]
    assert "<RectangleLabels" in result.path.with_suffix(".xml").read_text()


def test_label_studio_spans_and_classification(spans, tmp_path):
    tasks = json.loads(
        _export(spans, "texts", "label-studio", tmp_path / "ls.json").path.read_text()
    )
    _check_label_studio_tasks(tasks)
    value = tasks[0]["annotations"][0]["result"][0]["value"]
    assert value == {"start": 0, "end": 12, "text": "Ada Lovelace", "labels": ["PER"]}
    rows = make_project(tmp_path / "c", n=20, n_labels=4)
    tasks = json.loads(_export(rows, "pool", "label-studio", tmp_path / "c.json").path.read_text())
    _check_label_studio_tasks(tasks)
    assert tasks[0]["annotations"][0]["result"][0]["value"]["choices"] in (["yes"], ["no"])
    assert "review" in tasks[0]["data"]


def test_csv_and_parquet_formats_hold_the_json_lists(spans, tmp_path):
    _export(spans, "texts", "csv", tmp_path / "l.csv")
    _export(spans, "texts", "parquet", tmp_path / "l.parquet")
    frame = pd.read_parquet(tmp_path / "l.parquet")
    assert json.loads(frame.loc[frame["item_id"] == "t1", "label"].iloc[0]) == spans_of(TEXTS[1][1])
    assert len(pd.read_csv(tmp_path / "l.csv")) == 12
    with pytest.raises(InputError, match=r"a csv export needs a file ending in .csv"):
        _export(spans, "texts", "csv", tmp_path / "l.parquet")


# --- refusals --------------------------------------------------------------------------------


def test_a_format_that_does_not_fit_the_task_is_refused(spans, boxes, tmp_path):
    with pytest.raises(InputError, match=r"format coco is for boxes projects.*task spans"):
        _export(spans, "texts", "coco", tmp_path / "c.json")
    with pytest.raises(InputError, match="format conll is for spans projects"):
        _export(boxes, "media", "conll", tmp_path / "c.conll")


def test_a_label_that_is_not_a_list_stops_the_export_naming_the_item_and_leaves_no_file(tmp_path):
    project = spans_project(tmp_path / "p")
    _label(project, "texts", {"t0": spans_of(TEXTS[0][1]), "t1": "PER"})
    target = tmp_path / "ner.jsonl"
    with pytest.raises(InputError, match="item 't1': its label 'PER' is not a list of spans"):
        _export(project, "texts", "spacy-jsonl", target)
    assert not target.exists() and not list(tmp_path.glob(".ner.jsonl*"))


def test_the_cli_exports_with_a_format(boxes, tmp_path, capsys):
    code = main(["labels", "export", str(boxes.root), str(tmp_path / "c.json"), "--format", "coco"])
    assert code == 0 and "coco: 3 labeled items, 3 annotations" in capsys.readouterr().out
    code = main(
        [
            "labels",
            "export",
            str(boxes.root),
            str(tmp_path / "e.csv"),
            "--format",
            "csv",
            "--events",
        ]
    )
    assert code == 1 and "drop --format" in capsys.readouterr().err


def test_the_exports_read_the_labels_training_reads_on_any_mix_of_events(tmp_path):
    # Exports decide in memory only the items of two labelers or a review, and stream the
    # rest from current_labels: on random relabels, undos, skips, overlaps and decisions,
    # the result must be store.consensus's over every event.
    import random

    from active_labeling.exports.source import ExportSource
    from active_labeling.store.consensus import ConsensusRule, decided_labels

    project = make_project(tmp_path / "p", n=60, n_labels=0)
    rng = random.Random(7)
    events = []
    for _ in range(400):
        item = f"I{rng.randrange(60)}"
        who = rng.choice(["ann", "ann", "bob", "cy"])
        kind = rng.random()
        if kind < 0.6:
            events.append(LabelEvent("pool", item, "labeled", who, label=rng.choice(["yes", "no"])))
        elif kind < 0.75:
            events.append(LabelEvent("pool", item, "skipped", who))
        elif kind < 0.9:
            events.append(LabelEvent("pool", item, "undone", who))
        else:
            review = rng.choice(["accepted", "corrected", "sent_back"])
            label = None if review == "sent_back" else rng.choice(["yes", "no"])
            status = "undone" if review == "sent_back" else "labeled"
            events.append(LabelEvent("pool", item, status, "rev", label=label, review=review))
    with project.connect() as con:
        append_events(con, events)
        expected = decided_labels(con, "pool", ConsensusRule.for_dataset(project, "pool"))
        exported = {
            r["item_id"]: r["_label"] for r in ExportSource.open(con, project, "pool").rows()
        }
    assert exported == expected.labels().to_dict()
    assert 10 < len(exported) < 60
