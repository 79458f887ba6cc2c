"""Images, sounds and texts made on the spot for the folder, annotation and export tests."""

from __future__ import annotations

import csv
import io
import math
import struct
import wave
from pathlib import Path

from active_labeling.flow.project import Project
from active_labeling.store import datasets

#: Texts with entities, for spans projects: (text, [(start, end, label)]).
TEXTS = [
    (
        "Ada Lovelace met Charles Babbage in London .",
        [(0, 12, "PER"), (17, 32, "PER"), (36, 42, "LOC")],
    ),
    ("Marie Curie worked in Paris .", [(0, 11, "PER"), (22, 27, "LOC")]),
    ("Alan Turing was born in London .", [(0, 11, "PER"), (24, 30, "LOC")]),
    ("Grace Hopper lived in New York .", [(0, 12, "PER"), (22, 30, "LOC")]),
    ("Paris is far from New York .", [(0, 5, "LOC"), (18, 26, "LOC")]),
    ("Charles Babbage designed engines .", [(0, 15, "PER")]),
    ("London and Paris are cities .", [(0, 6, "LOC"), (11, 16, "LOC")]),
    ("Marie Curie and Alan Turing never met .", [(0, 11, "PER"), (16, 27, "PER")]),
    ("Nobody lived there .", []),
    ("Grace Hopper visited Paris .", [(0, 12, "PER"), (21, 26, "LOC")]),
    ("Ada Lovelace wrote notes .", [(0, 12, "PER")]),
    ("New York is big .", [(0, 8, "LOC")]),
]


def png_bytes(width: int = 64, height: int = 48, color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 8000, tone: float = 440.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * tone * i / rate)))
            for i in range(int(seconds * rate))
        )
        sound.writeframes(frames)
    return buffer.getvalue()


def image_folder(root: Path, n: int = 4) -> Path:
    """``n`` images (PNG and JPEG, one in a sub-folder) and a stray text file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    for i in range(n):
        if i % 2:
            (root / f"img{i}.jpg").write_bytes(jpeg_bytes(80 + i, 60))
        else:
            (root / ("sub" if i == 0 else ".") / f"img{i}.png").write_bytes(png_bytes(64 + i, 48))
    (root / "notes.txt").write_text("not an image")
    return root


def audio_folder(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"clip{i}.wav").write_bytes(wav_bytes(0.25 * (i + 1)))
    return root


def write_texts_csv(path: Path, texts=TEXTS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for i, (text, _) in enumerate(texts):
            writer.writerow([f"t{i}", text])
    return path


def spans_project(root: Path, texts=TEXTS, classes=("PER", "LOC")) -> Project:
    """A spans project with dataset 'texts' (ids t0, t1, ...) and no label yet."""
    project = Project.init(root, classes=list(classes), task="spans", text_column="text")
    with project.connect() as con:
        info = datasets.import_file(
            con, "texts", write_texts_csv(root / "texts.csv", texts), id_column="id"
        )
    project.record_dataset(info)
    return project


def folder_project(root: Path, task: str, classes=("cat", "dog"), n: int = 4) -> Project:
    """A project whose dataset 'media' is a folder of images (boxes, classification) or
    sounds (audio)."""
    from active_labeling.store.media import import_folder

    project = Project.init(root, classes=list(classes))
    folder = (
        audio_folder(root.parent / f"{root.name}-in", n)
        if task == "audio"
        else image_folder(root.parent / f"{root.name}-in", n)
    )
    with project.connect() as con:
        info = import_folder(con, "media", folder, project.root / "media", task=task)
    project.record_dataset(info)
    return project


def spans_of(text_spans) -> list[dict]:
    return [{"start": s, "end": e, "label": label} for s, e, label in text_spans]
