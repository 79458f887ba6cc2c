"""The model's hint on each item (predicted class, or predicted set of a multi-label model,
and confidence), off the handout's path.

A hint needs the queue's model: loading it takes a moment, and a pipeline's
``predict_proba`` on one row costs tens of milliseconds of Python, so neither may happen
under the service's lock nor once per request. When a queue generation is first seen, a
background thread loads its model and predicts the generation's best-ranked items in large
batches; a handout then reads its hints from memory. Items outside that set (past the
precomputed ranks, or handed out in dataset order) are predicted on demand, outside the
service's lock. A request that comes before the model is loaded waits for it (outside the
service's lock, so other labelers are not held up), at most ``LOAD_WAIT`` seconds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pandas as pd

from active_labeling.errors import ActiveLabelingError

log = logging.getLogger(__name__)

#: How many of a generation's best-ranked items get their hint computed ahead.
PRECOMPUTE_ITEMS = 20_000
_BATCH = 5_000
#: Seconds a request waits for the model to load before it goes out without a hint.
LOAD_WAIT = 15.0


class Hints:
    """Predicted class and confidence per item, for the latest generation's model.

    Parameters
    ----------
    models_dir : Path
        The project's saved models.
    cursor : callable
        Returns a new DuckDB cursor on the store (the background thread's own connection).
    relation : str
        The dataset's quoted relation name.
    precompute : int
        How many best-ranked items of a generation to predict ahead.
    """

    def __init__(self, models_dir, cursor, relation: str, *, precompute: int = PRECOMPUTE_ITEMS):
        self.models_dir = models_dir
        self.cursor = cursor
        self.relation = relation
        self.precompute = precompute
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._model: Any = None
        self._ready = threading.Event()
        self._loaded = threading.Event()
        self._cache: dict[str, dict] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def warm(self, generation) -> None:
        """Start loading the model of ``generation`` (id, model name, version) if it is new."""
        if generation is None or generation[1] is None:
            return
        key = (generation[1], generation[2])
        with self._lock:
            if key == self._key or self._stop.is_set():
                return
            self._key, self._model, self._cache = key, None, {}
            self._ready, self._loaded = threading.Event(), threading.Event()
            events = (self._loaded, self._ready)
            thread = threading.Thread(
                target=self._load, args=(key, generation[0], *events), name="hints", daemon=True
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Stop computing hints and wait for the background threads to leave the store.

        Call before closing the connection their cursors come from: DuckDB refuses to close
        a connection while one of its cursors runs a query.
        """
        with self._lock:
            self._stop.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the current model is loaded (and its queue predicted); for tests."""
        return self._ready.wait(timeout)

    def _load(self, key, generation_id: int, loaded, ready) -> None:
        from active_labeling.models import load_model

        try:
            try:
                saved = load_model(self.models_dir, *key)
            except ActiveLabelingError as exc:
                log.warning("no hints: model %s version %s: %s", *key, exc)
                return
            with self._lock:
                if self._key != key:
                    return
                self._model = saved
            loaded.set()
            self._precompute(saved, key, generation_id)
        except Exception:  # a hint is optional: never let it take the server down
            log.exception("computing hints for model %s version %s failed", *key)
        finally:
            loaded.set()
            ready.set()

    def _precompute(self, saved, key, generation_id: int) -> None:
        if self._stop.is_set():
            return
        con = self.cursor()
        try:
            for offset in range(0, self.precompute, _BATCH):
                if self._stop.is_set():
                    return
                frame = con.execute(
                    f"SELECT d.* FROM queue q JOIN {self.relation} d ON d.item_id = q.item_id "
                    "WHERE q.generation_id = ? AND q.rank > ? AND q.rank <= ? ORDER BY q.rank",
                    [generation_id, offset, offset + _BATCH],
                ).df()
                if frame.empty:
                    break
                hints = self._predict(saved, frame.set_index("item_id"))
                with self._lock:
                    if self._key != key:
                        return
                    self._cache.update(hints)
        finally:
            con.close()

    @staticmethod
    def _predict(saved, frame: pd.DataFrame) -> dict[str, dict]:
        try:
            proba = saved.pipeline.predict_proba(frame[saved.meta.feature_columns])
        except (KeyError, ValueError):
            return {}
        if saved.meta.multi_label:
            return _predicted_sets(saved.meta, frame.index, proba)
        best = proba.argmax(axis=1)
        classes = saved.meta.classes
        return {
            item_id: {"label": classes[b], "confidence": round(float(proba[i, b]), 4)}
            for i, (item_id, b) in enumerate(zip(frame.index, best, strict=True))
        }

    def for_records(self, records: dict[str, dict], generation) -> dict[str, dict]:
        """Hints for items given as {item id: row}: from memory, else predicted."""
        if not records or generation is None or generation[1] is None:
            return {}
        self.warm(generation)
        self._loaded.wait(LOAD_WAIT)
        with self._lock:
            if self._key != (generation[1], generation[2]) or self._model is None:
                return {}
            saved = self._model
            found = {i: self._cache[i] for i in records if i in self._cache}
        missing = [i for i in records if i not in found]
        if missing:
            frame = pd.DataFrame([records[i] for i in missing], index=missing)
            found.update(self._predict(saved, frame))
        return found


#: The hint's text for a predicted empty set.
NO_CLASS = "no class"


def _predicted_sets(meta, item_ids, proba) -> dict[str, dict]:
    """A multi-label model's hint per item: the predicted set (each class whose probability
    reaches its threshold), as a list (``labels``) and as text (``label``, what the page
    shows), the probability of each class, and the confidence: the mean over the classes
    of the probability of the decision taken (``p`` for a class in the set, ``1 - p`` for
    one left out)."""
    from active_labeling.models.multilabel import predict_label_sets

    classes = meta.classes
    chosen = predict_label_sets(proba, list(meta.thresholds.values())).astype(bool)
    decided = np.where(chosen, proba, 1.0 - proba).mean(axis=1)
    hints = {}
    for i, item_id in enumerate(item_ids):
        labels = [c for c, held in zip(classes, chosen[i], strict=True) if held]
        hints[item_id] = {
            "label": ", ".join(labels) or NO_CLASS,
            "labels": labels,
            "confidence": round(float(decided[i]), 4),
            "probabilities": {
                c: round(float(p), 4) for c, p in zip(classes, proba[i], strict=True)
            },
        }
    return hints
