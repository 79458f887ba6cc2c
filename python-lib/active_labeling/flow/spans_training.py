"""train-model on a spans project: the labeled texts in, a new spans model version out."""

from __future__ import annotations

from active_labeling.errors import InputError
from active_labeling.store.connection import quote_identifier, transaction
from active_labeling.store.consensus import ConsensusRule, decided_labels
from active_labeling.store.datasets import dataset_schema, require_dataset


def train_spans(con, project, *, dataset: str, model: str, params):
    """Fit a CRF (``models.spans``) on the decided spans labels of ``dataset``
    (``store.consensus``: a reviewer's list, else the labelers' identical lists, else the
    one list; a text whose labelers marked different spans waits for its review)."""
    from active_labeling.labeling.annotations import decode_list, resolve_text_column
    from active_labeling.models.spans import train_spans_model

    relation = require_dataset(con, dataset)
    columns = [c for c, _ in dataset_schema(con, dataset)]
    text_column = resolve_text_column(project.settings, columns, dataset)
    rule = ConsensusRule.for_dataset(project, dataset)
    with transaction(con):  # one snapshot: the labels read are those up to the mark
        high_water = con.execute(
            "SELECT max(event_id) FROM label_events WHERE dataset = ?", [dataset]
        ).fetchone()[0]
        decided = decided_labels(con, dataset, rule).labels()
        texts_of = dict(
            con.execute(
                f"SELECT item_id, {quote_identifier(text_column)} FROM {relation} "
                "WHERE item_id IN (SELECT unnest(?::VARCHAR[]))",
                [decided.index.tolist()],
            ).fetchall()
        )
    rows = [(i, texts_of[i], label) for i, label in decided.items() if i in texts_of]
    if not rows:
        raise InputError(
            f"dataset {dataset!r} has no labeled text yet: mark spans in the labeling app first"
        )
    texts, spans = [], []
    for item_id, text, label in rows:
        try:
            marked = decode_list(label, "spans")
        except InputError:
            raise InputError(
                f"item {item_id!r}: its label {label!r} is not a list of spans (labeled before "
                "the project's task was spans?)"
            ) from None
        texts.append(text if isinstance(text, str) else "")
        spans.append(marked)
    return train_spans_model(
        project.models_dir,
        model,
        texts,
        spans,
        classes=list(project.settings.classes),
        text_column=text_column,
        label_event_id=high_water,
        random_state=params.random_state,
    )
