"""A token-level model of text spans: a linear-chain CRF (CRFsuite) over BIO tags, on CPU.

It learns from the spans labelers marked (``labeling.annotations``: character offsets on
token bounds), proposes spans for a new text (the labeling page's prelabels) and says how
unsure it is of a text, for the query sampler:

- ``sequence``: 1 - the probability of the best tag sequence (Viterbi): how likely the
  whole proposal is wrong somewhere;
- ``entropy``: the mean entropy of the tokens' marginal tag distributions, which does not
  grow with the length of the text.

A version lives in ``<models_dir>/<name>/<version>/`` as ``model.crfsuite`` (CRFsuite's own
binary format: loading it runs no code) and ``spans-meta.json``, written in a temporary
folder and renamed into place, so a version once there is complete.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ValidationError

from active_labeling.errors import InputError

SPANS_MODEL_FILE = "model.crfsuite"
SPANS_META_FILE = "spans-meta.json"
UNCERTAINTIES = ("sequence", "entropy")
#: Share of the labeled texts held out to measure the model (when there are 10 or more).
HOLDOUT = 0.2


class SpansMeta(BaseModel):
    """What a spans model version was trained on, and how well it did."""

    name: str
    version: str
    task: str = "spans"
    classifier: str = "crf"
    classes: list[str]
    text_column: str
    training_rows: int
    training_tokens: int
    trained_at: datetime
    label_event_id: int | None = None
    #: Span-level F1 (exact start, end and class) on the held-out texts, None when too few.
    holdout_f1: float | None = None
    holdout_rows: int = 0
    cv_note: str = ""
    #: train-model's report reads these from a classifier's meta: a CRF has no CV scores,
    #: and a spans model is not a multi-label classifier.
    cv_scores: None = None
    multi_label: bool = False

    def scores_summary(self) -> str:
        """The scores in words, for train-model's report."""
        if self.holdout_f1 is None:
            return f"no held-out score ({self.cv_note})" if self.cv_note else "no held-out score"
        return f"span F1 {self.holdout_f1:.3f} on {self.holdout_rows} held-out texts"


# --- features and tags -----------------------------------------------------------------------


def _shape(word: str) -> str:
    shape = []
    for char in word[:8]:
        kind = "X" if char.isupper() else "x" if char.islower() else "d" if char.isdigit() else char
        if not shape or shape[-1] != kind:
            shape.append(kind)
    return "".join(shape)


def token_features(text: str, tokens: list[tuple[int, int]]) -> list[dict[str, str | float]]:
    """CRFsuite features of each token: the word, its affixes and shape, its neighbours."""
    words = [text[s:e] for s, e in tokens]
    features = []
    for i, word in enumerate(words):
        lower = word.lower()
        feature: dict[str, str | float] = {
            "bias": 1.0,
            "w": lower,
            "p3": lower[:3],
            "s3": lower[-3:],
            "s2": lower[-2:],
            "shape": _shape(word),
            "title": float(word.istitle()),
            "upper": float(word.isupper()),
            "digit": float(word.isdigit()),
        }
        if i > 0:
            feature["-1w"] = words[i - 1].lower()
            feature["-1title"] = float(words[i - 1].istitle())
        else:
            feature["BOS"] = 1.0
        if i + 1 < len(words):
            feature["+1w"] = words[i + 1].lower()
            feature["+1title"] = float(words[i + 1].istitle())
        else:
            feature["EOS"] = 1.0
        features.append(feature)
    return features


def bio_tags(tokens: list[tuple[int, int]], spans: list[dict]) -> list[str]:
    """The BIO tag of each token: B-<class> opens a span, I-<class> goes on, O is outside.

    >>> bio_tags([(0, 3), (4, 12), (13, 17)], [{"start": 0, "end": 12, "label": "PER"}])
    ['B-PER', 'I-PER', 'O']
    """
    tags = ["O"] * len(tokens)
    for span in spans:
        inside = [i for i, (s, e) in enumerate(tokens) if s >= span["start"] and e <= span["end"]]
        for n, i in enumerate(inside):
            tags[i] = ("B-" if n == 0 else "I-") + span["label"]
    return tags


def spans_from_tags(tokens: list[tuple[int, int]], tags: list[str]) -> list[dict]:
    """The spans a BIO tag sequence marks (an I- without its B- opens a span too).

    >>> spans_from_tags([(0, 3), (4, 12), (13, 17)], ["B-PER", "I-PER", "O"])
    [{'start': 0, 'end': 12, 'label': 'PER'}]
    """
    spans: list[dict] = []
    open_span: dict | None = None
    for (start, end), tag in zip(tokens, tags, strict=True):
        kind, _, label = tag.partition("-")
        if kind == "I" and open_span is not None and open_span["label"] == label:
            open_span["end"] = end
            continue
        open_span = None
        if kind in ("B", "I") and label:
            open_span = {"start": start, "end": end, "label": label}
            spans.append(open_span)
    return spans


# --- the model -------------------------------------------------------------------------------


class SpanTagger:
    """A trained CRF file, open for tagging (one tagger holds one sequence at a time: not
    shared between threads)."""

    def __init__(self, model_file: Path):
        import pycrfsuite

        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(model_file))
        self._labels = self._tagger.labels()

    def tags(self, text: str, tokens: list[tuple[int, int]]) -> list[str]:
        if not tokens:
            return []
        return self._tagger.tag(token_features(text, tokens))

    def predict_spans(self, text: str, tokens: list[tuple[int, int]] | None = None) -> list[dict]:
        """The spans the model proposes for ``text``."""
        from active_labeling.labeling.annotations import tokenize

        tokens = tokenize(text) if tokens is None else tokens
        return spans_from_tags(tokens, self.tags(text, tokens))

    def uncertainty(self, text: str, kind: str = "sequence") -> float:
        """How unsure the model is of ``text``: see the module's docstring; 0 for no token."""
        from active_labeling.labeling.annotations import tokenize

        if kind not in UNCERTAINTIES:
            raise InputError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {kind!r}")
        tokens = tokenize(text)
        if not tokens:
            return 0.0
        best = self._tagger.tag(token_features(text, tokens))  # also sets the sequence
        if kind == "sequence":
            return float(max(0.0, 1.0 - self._tagger.probability(best)))
        total = 0.0
        for t in range(len(tokens)):
            for label in self._labels:
                p = self._tagger.marginal(label, t)
                if p > 0:
                    total -= p * math.log(p)
        return float(total / len(tokens))


@dataclass
class SpansModel:
    """One version of a spans model, loaded."""

    name: str
    version: str
    path: Path
    meta: SpansMeta

    def __post_init__(self):
        self._local = threading.local()

    @property
    def tagger(self) -> SpanTagger:
        """This thread's tagger (the hint thread and the request threads tag at once)."""
        tagger = getattr(self._local, "tagger", None)
        if tagger is None:
            tagger = self._local.tagger = SpanTagger(self.path / SPANS_MODEL_FILE)
        return tagger

    def predict_spans(self, text: str, tokens: list[tuple[int, int]] | None = None) -> list[dict]:
        return self.tagger.predict_spans(text, tokens)

    def uncertainty(self, text: str, kind: str = "sequence") -> float:
        return self.tagger.uncertainty(text, kind)


def _span_f1(truth: list[list[dict]], predicted: list[list[dict]]) -> float:
    def keyed(lists):
        return {(i, s["start"], s["end"], s["label"]) for i, ss in enumerate(lists) for s in ss}

    true, found = keyed(truth), keyed(predicted)
    if not true and not found:
        return 1.0
    hits = len(true & found)
    return 2 * hits / (len(true) + len(found))


def _train_file(texts, spans_lists, path: Path, *, c1: float, c2: float, max_iterations: int):
    import pycrfsuite

    from active_labeling.labeling.annotations import tokenize

    trainer = pycrfsuite.Trainer(verbose=False)
    tokens_seen = 0
    for text, spans in zip(texts, spans_lists, strict=True):
        tokens = tokenize(text)
        if not tokens:
            continue
        tokens_seen += len(tokens)
        trainer.append(token_features(text, tokens), bio_tags(tokens, spans))
    trainer.set_params(
        {"c1": c1, "c2": c2, "max_iterations": max_iterations, "feature.possible_transitions": True}
    )
    trainer.train(str(path))
    return tokens_seen


def train_spans_model(
    models_dir: Path | str,
    name: str,
    texts: list[str],
    spans_lists: list[list[dict]],
    *,
    classes: list[str],
    text_column: str,
    label_event_id: int | None = None,
    c1: float = 0.1,
    c2: float = 0.01,
    max_iterations: int = 100,
    random_state: int = 0,
) -> SpansModel:
    """Fit a CRF on the labeled texts and save it as the next version of model ``name``.

    With 10 texts or more, a fifth of them is held out first to measure span-level F1; the
    saved model is then trained on all of them.
    """
    from active_labeling.models.saved import _check_name

    _check_name(name)
    if not texts:
        raise InputError("no labeled text to train a spans model on")
    holdout_f1, held = None, 0
    models_dir = Path(models_dir)
    with tempfile.TemporaryDirectory(prefix=".spans-") as scratch:
        if len(texts) >= 10:
            order = list(range(len(texts)))
            random.Random(random_state).shuffle(order)
            held = max(1, int(len(texts) * HOLDOUT))
            test, train = order[:held], order[held:]
            probe = Path(scratch) / "probe.crfsuite"
            _train_file(
                [texts[i] for i in train],
                [spans_lists[i] for i in train],
                probe,
                c1=c1,
                c2=c2,
                max_iterations=max_iterations,
            )
            prober = SpanTagger(probe)
            holdout_f1 = _span_f1(
                [spans_lists[i] for i in test], [prober.predict_spans(texts[i]) for i in test]
            )
        model_path = Path(scratch) / "final.crfsuite"
        tokens_seen = _train_file(
            texts, spans_lists, model_path, c1=c1, c2=c2, max_iterations=max_iterations
        )
        note = (
            f"span F1 {holdout_f1:.3f} on {held} held-out texts"
            if holdout_f1 is not None
            else "fewer than 10 labeled texts: no held-out measure"
        )
        return _save(
            models_dir,
            name,
            model_path,
            lambda version: SpansMeta(
                name=name,
                version=version,
                classes=classes,
                text_column=text_column,
                training_rows=len(texts),
                training_tokens=tokens_seen,
                trained_at=datetime.now(timezone.utc),
                label_event_id=label_event_id,
                holdout_f1=holdout_f1,
                holdout_rows=held,
                cv_note=note,
            ),
        )


def _save(models_dir: Path, name: str, model_path: Path, make_meta) -> SpansModel:
    """The next version of ``name``: a complete folder renamed into place (a writer that
    loses the race for a number takes the next one)."""
    model_dir = models_dir / name
    model_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        version = str(max(versions, default=0) + 1)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=model_dir))
        try:
            shutil.copyfile(model_path, staging / SPANS_MODEL_FILE)
            meta = make_meta(version)
            (staging / SPANS_META_FILE).write_text(meta.model_dump_json(indent=2), encoding="utf-8")
            os.rename(staging, model_dir / version)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if (model_dir / version).exists():
                continue  # another writer took this number
            raise
        return SpansModel(name, version, model_dir / version, meta)
    raise InputError(f"{model_dir}: could not find a free version number")


def _read_meta(path: Path) -> SpansMeta:
    try:
        return SpansMeta.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise InputError(f"{path}: not a spans model's metadata: {exc}") from None


def is_spans_model(models_dir: Path | str, name: str) -> bool:
    """Whether model ``name`` has a spans version (a CRF) rather than a classifier."""
    model_dir = Path(models_dir) / name
    if not model_dir.is_dir():
        return False
    return any((v / SPANS_META_FILE).is_file() for v in model_dir.iterdir() if v.is_dir())


def spans_versions(models_dir: Path | str, name: str) -> list[str]:
    model_dir = Path(models_dir) / name
    if not model_dir.is_dir():
        return []
    found = [
        v.name
        for v in model_dir.iterdir()
        if v.is_dir() and v.name.isdigit() and (v / SPANS_META_FILE).is_file()
    ]
    return sorted(found, key=int)


def load_spans_model(models_dir: Path | str, name: str, version: str | None = None) -> SpansModel:
    """Load a version of spans model ``name``, the latest when ``version`` is None."""
    versions = spans_versions(models_dir, name)
    if not versions:
        raise InputError(f"no spans model named {name!r} in {models_dir}")
    version = versions[-1] if version is None else str(version)
    if version not in versions:
        raise InputError(
            f"spans model {name!r} has no version {version!r}; versions: {', '.join(versions)}"
        )
    path = Path(models_dir) / name / version
    return SpansModel(name, version, path, _read_meta(path / SPANS_META_FILE))


def newest_spans_version(models_dir: Path | str) -> tuple[str, str] | None:
    """(name, version) of the spans model trained last, or None. Reads only metadata."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return None
    best = None
    for model_dir in models_dir.iterdir():
        if not model_dir.is_dir():
            continue
        versions = spans_versions(models_dir, model_dir.name)
        if versions:
            meta = _read_meta(model_dir / versions[-1] / SPANS_META_FILE)
            if best is None or meta.trained_at > best[0]:
                best = (meta.trained_at, model_dir.name, versions[-1])
    return None if best is None else (best[1], best[2])
