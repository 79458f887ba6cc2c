"""Label Studio's JSON export: a list of tasks, each with its data and one annotation.

The result types are Label Studio's own: ``choices`` (classification and audio),
``labels`` (spans: character offsets and the text), ``rectanglelabels`` (boxes: in percent
of the image, with its size in pixels). Media are named by their URL in this project's app
(``/media/...``); the config a Label Studio project needs is written beside the file
(``<name>.xml``).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

from active_labeling.exports.source import ExportSource, atomic_file


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _data(row: dict, source: ExportSource) -> dict:
    data = {"item_id": row["item_id"]}
    if source.task == "spans":
        data["text"] = row.get(source.text_column) or ""
    elif source.task in ("boxes", "audio") or (
        source.media_column and row.get(source.media_column)
    ):
        key = "audio" if source.task == "audio" else "image"
        data[key] = "/media/" + quote(source.image_name(row))
    if source.task == "classification":
        for column in source.columns:
            data.setdefault(column, _plain(row.get(column)))
    return data


def _result(row: dict, source: ExportSource) -> tuple[list[dict], int]:
    if source.task == "spans":
        text = row.get(source.text_column) or ""
        spans = source.annotations(row, "spans")
        return [
            {
                "id": f"s{i}",
                "from_name": "label",
                "to_name": "text",
                "type": "labels",
                "value": {
                    "start": s["start"],
                    "end": s["end"],
                    "text": text[s["start"] : s["end"]],
                    "labels": [s["label"]],
                },
            }
            for i, s in enumerate(spans)
        ], len(spans)
    if source.task == "boxes":
        width, height = source.image_size(row)
        boxes = source.annotations(row, "boxes")
        return [
            {
                "id": f"b{i}",
                "from_name": "label",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": {
                    "x": 100 * b["x"] / width,
                    "y": 100 * b["y"] / height,
                    "width": 100 * b["w"] / width,
                    "height": 100 * b["h"] / height,
                    "rotation": 0,
                    "rectanglelabels": [b["label"]],
                },
            }
            for i, b in enumerate(boxes)
        ], len(boxes)
    label = row["_label"]
    if source.project.settings.multi_label:
        try:
            choices = json.loads(label)
        except ValueError:
            choices = [label]
    else:
        choices = [label]
    target = (
        "audio"
        if source.task == "audio"
        else ("image" if "image" in _data(row, source) else "item")
    )
    return [
        {
            "id": "c0",
            "from_name": "label",
            "to_name": target,
            "type": "choices",
            "value": {"choices": choices},
        }
    ], 1


def write_label_studio(source: ExportSource, path: Path) -> tuple[int, int]:
    """The task list, streamed one task at a time; the labeling config beside it."""
    items = annotations = 0
    with atomic_file(path) as out:
        out.write("[")
        for row in source.rows():
            result, n = _result(row, source)
            task = {
                "id": items + 1,
                "data": _data(row, source),
                "annotations": [
                    {
                        "id": items + 1,
                        "completed_by": row["_annotator"],
                        "created_at": _plain(row["_labeled_at"]),
                        "result": result,
                        "was_cancelled": False,
                    }
                ],
            }
            out.write(("," if items else "") + "\n" + json.dumps(task, ensure_ascii=False))
            items += 1
            annotations += n
        out.write("\n]\n")
    with atomic_file(path.with_suffix(".xml")) as config:
        config.write(labeling_config(source))
    return items, annotations


def labeling_config(source: ExportSource) -> str:
    """The Label Studio labeling config matching the export (its XML)."""
    from xml.sax.saxutils import quoteattr

    values = "".join(f"    <Label value={quoteattr(c)}/>\n" for c in source.classes)
    choices = "".join(f"    <Choice value={quoteattr(c)}/>\n" for c in source.classes)
    if source.task == "spans":
        body = (
            f'  <Labels name="label" toName="text">\n{values}  </Labels>\n'
            '  <Text name="text" value="$text"/>\n'
        )
    elif source.task == "boxes":
        body = (
            f'  <Image name="image" value="$image"/>\n'
            f'  <RectangleLabels name="label" toName="image">\n{values}  </RectangleLabels>\n'
        )
    else:
        kind = "audio" if source.task == "audio" else "image" if source.media_column else "item"
        shown = {
            "audio": '  <Audio name="audio" value="$audio"/>\n',
            "image": '  <Image name="image" value="$image"/>\n',
            "item": '  <Text name="item" value="$item_id"/>\n',
        }[kind]
        choice = "multiple" if source.project.settings.multi_label else "single"
        body = (
            f'{shown}  <Choices name="label" toName="{kind}" choice="{choice}">\n'
            f"{choices}  </Choices>\n"
        )
    return f"<View>\n{body}</View>\n"
