"""Exports of the current labels in the formats training code reads.

=================  ==================================================  ====================
format             what                                                tasks
=================  ==================================================  ====================
``csv``            item_id, label, annotator, labeled_at, comment      every task
``parquet``        the same, as Parquet                                every task
``coco``           one COCO detection JSON: images, annotations        boxes
``yolo``           a folder: ``labels/<image>.txt``, data.yaml          boxes
``voc``            a folder: ``Annotations/<image>.xml`` (Pascal VOC)   boxes
``conll``          token and BIO tag per line, a blank line per text    spans
``spacy-jsonl``    one JSON per text: text, spans, entities            spans
``label-studio``   Label Studio's JSON task list, with annotations      every task
=================  ==================================================  ====================

Every export streams: the labels are read in batches joined with their items, written as
they come (``exports.source``), so memory does not grow with the project, and into a
temporary file or folder renamed into place at the end, so a failed export leaves no half
file. A format that does not fit the task (COCO of a spans project) is refused up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from active_labeling.errors import InputError

#: The formats, and the tasks each one fits (None: every task).
FORMATS: dict[str, tuple[str, ...] | None] = {
    "csv": None,
    "parquet": None,
    "coco": ("boxes",),
    "yolo": ("boxes",),
    "voc": ("boxes",),
    "conll": ("spans",),
    "spacy-jsonl": ("spans",),
    "label-studio": None,
}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    #: Items written (labeled ones), and annotations (boxes or spans) among them.
    items: int
    annotations: int | None = None


def export_labels_as(con, project, dataset: str, fmt: str, path: Path | str) -> ExportResult:
    """Write the current labels of ``dataset`` to ``path`` in format ``fmt`` (see above)."""
    from active_labeling.exports.source import ExportSource

    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    path = Path(path)
    task = project.task_of(dataset)
    fits = FORMATS[fmt]
    if fits is not None and task not in fits:
        kinds = " or ".join(f"{t} projects" for t in fits)
        raise InputError(
            f"format {fmt} is for {kinds}, and dataset {dataset!r} is labeled with task {task}"
        )
    if fmt in ("csv", "parquet"):
        from active_labeling.store.consensus import ConsensusRule

        return _table(con, dataset, fmt, path, ConsensusRule.for_dataset(project, dataset))
    source = ExportSource.open(con, project, dataset)
    if fmt == "coco":
        from active_labeling.exports.boxes import write_coco as write
    elif fmt == "yolo":
        from active_labeling.exports.boxes import write_yolo as write
    elif fmt == "voc":
        from active_labeling.exports.boxes import write_voc as write
    elif fmt == "conll":
        from active_labeling.exports.spans import write_conll as write
    elif fmt == "spacy-jsonl":
        from active_labeling.exports.spans import write_spacy_jsonl as write
    else:
        from active_labeling.exports.label_studio import write_label_studio as write
    items, annotations = write(source, path)
    return ExportResult(path, fmt, items, annotations)


def _table(con, dataset: str, fmt: str, path: Path, rule) -> ExportResult:
    from active_labeling.store.labels import export_labels

    suffix = path.suffix.lower()
    wanted = (".csv", ".tsv") if fmt == "csv" else (".parquet", ".pq")
    if suffix not in wanted:
        raise InputError(f"{path}: a {fmt} export needs a file ending in {' or '.join(wanted)}")
    export_labels(con, dataset, path, rule)
    items = con.execute(
        "SELECT count(*) FROM current_labels WHERE dataset = ?", [dataset]
    ).fetchone()[0]
    return ExportResult(path, fmt, items)
