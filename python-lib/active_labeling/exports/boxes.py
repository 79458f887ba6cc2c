"""Boxes exports: COCO detection JSON, YOLO label files, Pascal VOC XML.

Coordinates are stored in image pixels, origin top left (``labeling.annotations``): COCO
keeps them (``bbox`` = x, y, width, height), YOLO divides them by the image's size (class,
centre x, centre y, width, height, each in 0..1), VOC writes corners (xmin, ymin, xmax,
ymax, 0-based pixels as CVAT and Label Studio write them). An image labeled with no box is
written too (an empty YOLO file, a VOC file without objects, a COCO image without
annotations): "nothing here" is a label.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from active_labeling.exports.source import ExportSource, PerItemFiles, atomic_file, atomic_folder


def _category_ids(source: ExportSource) -> dict[str, int]:
    return {name: i + 1 for i, name in enumerate(source.classes)}


def write_coco(source: ExportSource, path: Path) -> tuple[int, int]:
    """One COCO JSON: images first, then annotations (spooled to a temporary file as the
    images are written, so both lists stream)."""
    categories = _category_ids(source)
    images = annotations = 0
    with atomic_file(path) as out, tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        info = {
            "description": f"active-labeling export of dataset {source.dataset}",
            "date_created": datetime.now(timezone.utc).isoformat(),
        }
        out.write('{"info": ' + json.dumps(info) + ', "licenses": [], "categories": ')
        out.write(
            json.dumps([{"id": i, "name": n, "supercategory": ""} for n, i in categories.items()])
        )
        out.write(', "images": [')
        for row in source.rows():
            boxes = source.annotations(row, "boxes")
            width, height = source.image_size(row)
            images += 1
            image = {
                "id": images,
                "file_name": source.image_name(row),
                "width": width,
                "height": height,
                "item_id": row["item_id"],
            }
            out.write(("," if images > 1 else "") + json.dumps(image))
            for box in boxes:
                annotations += 1
                entry = {
                    "id": annotations,
                    "image_id": images,
                    "category_id": categories[box["label"]],
                    "bbox": [box["x"], box["y"], box["w"], box["h"]],
                    "area": box["w"] * box["h"],
                    "iscrowd": 0,
                    "segmentation": [],
                }
                spool.write(("," if annotations > 1 else "") + json.dumps(entry))
        out.write('], "annotations": [')
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            out.write(chunk)
        out.write("]}\n")
    return images, annotations


def write_yolo(source: ExportSource, path: Path) -> tuple[int, int]:
    """A folder: ``labels/<image path>.txt`` (one line per box), ``classes.txt`` and a
    ``data.yaml`` naming the classes and where the images are (the project's media/)."""
    index = {name: i for i, name in enumerate(source.classes)}
    images = annotations = 0
    with atomic_folder(path) as root:
        files = PerItemFiles(root / "labels", ".txt")
        for row in source.rows():
            boxes = source.annotations(row, "boxes")
            width, height = source.image_size(row)
            lines = []
            for box in boxes:
                cx = (box["x"] + box["w"] / 2) / width
                cy = (box["y"] + box["h"] / 2) / height
                lines.append(
                    f"{index[box['label']]} {cx:.6f} {cy:.6f} "
                    f"{box['w'] / width:.6f} {box['h'] / height:.6f}\n"
                )
            files.write(source.image_name(row), "".join(lines))
            images += 1
            annotations += len(boxes)
        (root / "classes.txt").write_text("".join(f"{c}\n" for c in source.classes))
        names = "".join(f"  {i}: {json.dumps(c)}\n" for i, c in enumerate(source.classes))
        (root / "data.yaml").write_text(
            "# Written by active-labeling: the images are under the project's media/ folder,\n"
            "# the labels under labels/ here, with the same relative paths.\n"
            f"path: {json.dumps(str((source.project.root / 'media').resolve()))}\n"
            "train: .\n"
            f"nc: {len(source.classes)}\n"
            f"names:\n{names}",
            encoding="utf-8",
        )
    return images, annotations


def write_voc(source: ExportSource, path: Path) -> tuple[int, int]:
    """A folder: ``Annotations/<image path>.xml`` per image, and ``labels.txt``.

    The XML is written from a template, every text escaped: building an ElementTree per
    image took most of the export's time."""
    images = annotations = 0
    with atomic_folder(path) as root:
        files = PerItemFiles(root / "Annotations", ".xml")
        for row in source.rows():
            boxes = source.annotations(row, "boxes")
            width, height = source.image_size(row)
            name = source.image_name(row)
            folder, _, filename = name.rpartition("/")
            objects = "".join(
                _VOC_OBJECT.format(
                    name=escape(box["label"]),
                    xmin=f"{box['x']:g}",
                    ymin=f"{box['y']:g}",
                    xmax=f"{box['x'] + box['w']:g}",
                    ymax=f"{box['y'] + box['h']:g}",
                )
                for box in boxes
            )
            files.write(
                name,
                _VOC_IMAGE.format(
                    folder=escape(folder),
                    filename=escape(filename),
                    path=escape(name),
                    width=width,
                    height=height,
                    objects=objects,
                ),
            )
            images += 1
            annotations += len(boxes)
        (root / "labels.txt").write_text("".join(f"{c}\n" for c in source.classes))
    return images, annotations


_VOC_IMAGE = """<?xml version='1.0' encoding='utf-8'?>
<annotation>
  <folder>{folder}</folder>
  <filename>{filename}</filename>
  <path>{path}</path>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
  <segmented>0</segmented>
{objects}</annotation>
"""
_VOC_OBJECT = """  <object>
    <name>{name}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>0</difficult>
    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>
  </object>
"""
