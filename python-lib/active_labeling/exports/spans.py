"""Spans exports: CoNLL (a token and its BIO tag per line) and spaCy-ready JSONL.

Tokens are the labeling page's (``labeling.annotations.tokenize``), so every span falls on
token bounds and the BIO tags say exactly what was marked. Offsets in the JSONL are in
characters (code points), as spaCy's ``Doc.char_span`` counts them.
"""

from __future__ import annotations

import json
from pathlib import Path

from active_labeling.exports.source import ExportSource, atomic_file


def _text(row: dict, source: ExportSource) -> str:
    text = row.get(source.text_column)
    return text if isinstance(text, str) else ""


def write_conll(source: ExportSource, path: Path) -> tuple[int, int]:
    """One block per text: ``# item_id = ...``, then ``token<TAB>tag`` lines, then a blank
    line (CoNLL-2003's two columns; reads with ``conllu.parse(fields=("form", "ner"))``)."""
    from active_labeling.labeling.annotations import tokenize
    from active_labeling.models.spans import bio_tags

    items = spans = 0
    with atomic_file(path) as out:
        for row in source.rows():
            marked = source.annotations(row, "spans")
            text = _text(row, source)
            tokens = tokenize(text)
            out.write(f"# item_id = {_one_line(row['item_id'])}\n")
            for (start, end), tag in zip(tokens, bio_tags(tokens, marked), strict=True):
                out.write(f"{text[start:end]}\t{tag}\n")
            out.write("\n")
            items += 1
            spans += len(marked)
    return items, spans


def _one_line(value) -> str:
    return " ".join(str(value).split())


def write_spacy_jsonl(source: ExportSource, path: Path) -> tuple[int, int]:
    """One JSON object per line: ``id``, ``text``, ``spans`` (start, end, label, as Prodigy
    writes them) and ``entities`` ([start, end, label], spaCy's ``Example.from_dict``)."""
    items = spans = 0
    with atomic_file(path) as out:
        for row in source.rows():
            marked = source.annotations(row, "spans")
            record = {
                "id": row["item_id"],
                "text": _text(row, source),
                "spans": [
                    {"start": s["start"], "end": s["end"], "label": s["label"]} for s in marked
                ],
                "entities": [[s["start"], s["end"], s["label"]] for s in marked],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            items += 1
            spans += len(marked)
    return items, spans
