"""Saved models on disk: versioned directories written atomically, loaded without running code.

A model named ``name`` lives in ``<models_dir>/<name>/<version>/`` with two files:
``model.skops`` (the fitted pipeline, in skops format) and ``meta.json`` (its
:class:`~active_labeling.models.training.ModelMeta`). Versions are "1", "2", ... and a
version directory, once there, is complete and never changes.

Loading must never execute code from the file: no pickle, and skops is told to trust only
the types this project saves. A file holding anything else is refused, not loaded.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import tempfile
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.models.training import (
    NAME_PATTERN,
    VERSION_PATTERN,
    ModelMeta,
    TrainedModel,
)

MODEL_FILE = "model.skops"
META_FILE = "meta.json"


def _skops_io():
    """skops.io, imported when a model is saved or loaded: importing it costs seconds (it
    walks every scikit-learn module), which every process of the project would pay."""
    import skops.io

    return skops.io


TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.multiclass._ConstantPredictor",
    }
)
"""The types skops does not trust by default that a saved pipeline of this project holds.

``skops.io.get_untrusted_types`` reports these for the preprocessor (``numpy.dtype``), the
random forest (``Tree``), histogram gradient boosting (``TreePredictor``) and a multi-label
one-vs-rest model whose training items all held a class or all lacked it
(``_ConstantPredictor``, which predicts that constant); loading refuses a file reporting
any other.
"""

SAVED_ESTIMATOR_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.preprocessing._label.LabelEncoder",
        # Multi-label models (models.multilabel).
        "sklearn.multiclass.OneVsRestClassifier",
        "sklearn.multiclass._ConstantPredictor",
        "sklearn.multioutput.ClassifierChain",
        "sklearn.preprocessing._label.LabelBinarizer",
    }
)
"""The estimator classes a saved pipeline is made of.

skops trusts every scikit-learn estimator and numpy function by default, so a file may
pass :data:`TRUSTED_TYPES` yet hold, say, a ``FunctionTransformer(func=numpy.exp)``, which
would run its function on every prediction. Such a pipeline is refused after loading:
building it runs no code, only using it would.
"""

_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
# A writer that loses the race for a version number retries the next one; this many
# losses in a row means something else is wrong.
_MAX_ATTEMPTS = 100


@dataclass
class SavedModel:
    """One version of a saved model, loaded."""

    name: str
    version: str
    path: Path
    pipeline: Pipeline
    meta: ModelMeta

    def check_pool_columns(self, columns: Iterable[str]) -> None:
        """Raise :class:`InputError` unless ``columns`` hold every feature column of the model.

        Call it before scoring a pool, so that a model trained on other columns is named
        with the columns it lacks rather than failing inside scikit-learn.

        Examples
        --------
        >>> import pandas as pd
        >>> from active_labeling.models import train_classifier
        >>> frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1]})
        >>> trained = train_classifier(frame, list("xxyy"), feature_columns=["a", "b"], cv=2)
        >>> saved = SavedModel("demo", "1", Path("."), trained.pipeline, trained.meta)
        >>> saved.check_pool_columns(["a", "b", "id"])
        >>> saved.check_pool_columns(["a", "id"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        active_labeling.errors.InputError: model 'demo' version 1 needs feature column 'b', ...
        """
        columns = list(columns)
        missing = [c for c in self.meta.feature_columns if c not in columns]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise InputError(
                f"model {self.name!r} version {self.version} needs feature column{plural} "
                f"{_names(missing)}, missing from the pool (available: {_names(columns)})"
            )

    def check_label_kind(self, multi_label: bool, where: str = "the project") -> None:
        """Raise :class:`InputError` unless the model is of the project's kind: multi-label
        for a multi-label project (``multi_label = true`` in ``where``), else single-label.

        Examples
        --------
        >>> import pandas as pd
        >>> from active_labeling.models import train_classifier
        >>> frame = pd.DataFrame({"a": [1, 2, 3, 4]})
        >>> trained = train_classifier(frame, list("xxyy"), feature_columns=["a"], cv=2)
        >>> saved = SavedModel("demo", "1", Path("."), trained.pipeline, trained.meta)
        >>> saved.check_label_kind(True, "project.toml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        active_labeling.errors.InputError: model 'demo' version 1 is single-label ...
        """
        if self.meta.multi_label == bool(multi_label):
            return
        ours, theirs = ("true", "false") if self.meta.multi_label else ("false", "true")
        kind = "multi-label" if self.meta.multi_label else "single-label"
        raise InputError(
            f"model {self.name!r} version {self.version} is {kind} (multi_label = {ours} in "
            f"its meta.json) but {where} has multi_label = {theirs}: train a model for this "
            "project with the train-model recipe"
        )


def save_model(models_dir: Path | str, name: str, trained: TrainedModel) -> SavedModel:
    """Save a trained model as the next version of ``name``.

    The files are written in a temporary directory beside the versions, which is then
    renamed to the version number in one step: a crash leaves no half-written version,
    and two writers never share a version (the one that loses the rename takes the next
    number).

    Parameters
    ----------
    models_dir : Path or str
        The directory of all saved models (``models/`` of a project).
    name : str
        The model's name: letters, digits, ``-`` and ``_``.
    trained : TrainedModel
        What :func:`~active_labeling.models.training.train_classifier` returns.

    Returns
    -------
    SavedModel
        The new version, its ``meta`` carrying its name and version.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from active_labeling.models import train_classifier
    >>> frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1]})
    >>> trained = train_classifier(frame, list("xxyy"), feature_columns=["a", "b"], cv=2)
    >>> with tempfile.TemporaryDirectory() as models_dir:
    ...     first = save_model(models_dir, "churn", trained)
    ...     second = save_model(models_dir, "churn", trained)
    ...     print(first.version, second.version, list_models(models_dir))
    1 2 {'churn': ['1', '2']}
    """
    _check_name(name)
    # Refuse now, before touching the disk, what load_model would refuse later.
    foreign = _foreign_part(trained.pipeline)
    if foreign is not None:
        raise InputError(
            f"model {name!r}: the pipeline holds {foreign}, which load_model refuses; "
            "save pipelines made by train_classifier"
        )
    model_dir = Path(models_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    # Hidden and not a number: listing and loading never mistake it for a version.
    staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=model_dir))
    try:
        with open(staging / MODEL_FILE, "wb") as file:
            _skops_io().dump(trained.pipeline, file)
            _flush_to_disk(file)
        untrusted = _skops_io().get_untrusted_types(file=staging / MODEL_FILE)
        foreign_types = [t for t in untrusted if t not in TRUSTED_TYPES]
        if foreign_types:
            raise InputError(
                f"model {name!r}: the pipeline holds type {foreign_types[0]!r}, which "
                "load_model refuses; save pipelines made by train_classifier"
            )
        for _ in range(_MAX_ATTEMPTS):
            existing = _versions(model_dir)
            version = str(int(existing[-1]) + 1) if existing else "1"
            meta = trained.meta.model_copy(update={"name": name, "version": version})
            with open(staging / META_FILE, "w", encoding="utf-8") as file:
                file.write(meta.model_dump_json(indent=2))
                _flush_to_disk(file)
            try:
                os.rename(staging, model_dir / version)
            except OSError as exc:
                # The target exists (ENOTEMPTY or EEXIST, by platform): another writer took
                # this number first. POSIX would replace an empty directory, but no writer
                # ever leaves one.
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
            _sync_directory(model_dir)
            return SavedModel(name, version, model_dir / version, trained.pipeline, meta)
        raise ActiveLabelingError(
            f"{model_dir}: could not take a new version number in {_MAX_ATTEMPTS} attempts"
        )
    finally:
        # After a successful rename the staging directory no longer exists.
        shutil.rmtree(staging, ignore_errors=True)


def load_model(models_dir: Path | str, name: str, version: str | None = None) -> SavedModel:
    """Load one version of a saved model, the latest when ``version`` is None.

    Parameters
    ----------
    models_dir : Path or str
        The directory of all saved models.
    name : str
        The model's name.
    version : str or None
        A version such as ``"2"``; None for the latest.

    Returns
    -------
    SavedModel

    Raises
    ------
    InputError
        An unknown name or version (the message lists what exists), a missing or invalid
        ``meta.json`` (it names the field), or a ``model.skops`` that is not a skops file
        or holds a type this project never saves (it names the file and the type).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from active_labeling.models import train_classifier
    >>> frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1]})
    >>> trained = train_classifier(frame, list("xxyy"), feature_columns=["a", "b"], cv=2)
    >>> with tempfile.TemporaryDirectory() as models_dir:
    ...     _ = save_model(models_dir, "churn", trained)
    ...     saved = load_model(models_dir, "churn")
    ...     print(saved.version, saved.meta.classes, saved.pipeline.predict(frame.head(1)))
    1 ['x', 'y'] ['x']
    """
    _check_name(name)
    models_dir = Path(models_dir)
    available = list_models(models_dir)
    if name not in available:
        raise InputError(
            f"no saved model named {name!r} in {models_dir}; "
            f"saved models: {_names(available) or 'none'}"
        )
    versions = available[name]
    if version is None:
        version = versions[-1]
    elif str(version) not in versions:
        raise InputError(
            f"model {name!r} has no version {str(version)!r}; versions: {', '.join(versions)}"
        )
    version = str(version)
    path = models_dir / name / version

    meta = _read_meta(path / META_FILE)
    for field, expected in [("name", name), ("version", version)]:
        if getattr(meta, field) != expected:
            raise InputError(
                f"{path / META_FILE}: field '{field}' is {getattr(meta, field)!r} but the "
                f"directory says {expected!r}"
            )
    pipeline = _read_pipeline(path / MODEL_FILE)
    if meta.multi_label:
        _check_outputs(path, pipeline, meta)
        return SavedModel(name, version, path, pipeline, meta)
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    if classes != meta.classes:
        raise InputError(
            f"{path / META_FILE}: field 'classes' is {meta.classes} but the model in "
            f"{MODEL_FILE} predicts {classes}"
        )
    return SavedModel(name, version, path, pipeline, meta)


def _check_outputs(path: Path, pipeline: Pipeline, meta: ModelMeta) -> None:
    """A multi-label model's file must hold a multi-label estimator with one output per
    class of ``meta.json`` (its ``classes_`` are column numbers, not the class names)."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.multioutput import ClassifierChain

    final = pipeline[-1]
    outputs = None
    if isinstance(final, ClassifierChain):
        outputs = len(getattr(final, "estimators_", []))
    elif isinstance(final, OneVsRestClassifier) and getattr(final, "multilabel_", False):
        outputs = len(final.classes_)
    if outputs is None:
        raise InputError(
            f"{path / META_FILE}: field 'multi_label' is true but the model in {MODEL_FILE} "
            f"is a single-label {type(final).__name__}"
        )
    if outputs != len(meta.classes):
        raise InputError(
            f"{path / META_FILE}: field 'classes' lists {len(meta.classes)} classes but the "
            f"model in {MODEL_FILE} gives {outputs} probabilities"
        )


def list_models(models_dir: Path | str) -> dict[str, list[str]]:
    """Each saved model's name and its versions, oldest first.

    Names without any complete version (only an interrupted save) are left out.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as models_dir:
    ...     list_models(models_dir)
    {}
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return {}
    found = {}
    for model_dir in sorted(models_dir.iterdir()):
        if model_dir.is_dir() and _NAME.fullmatch(model_dir.name):
            versions = _versions(model_dir)
            if versions:
                found[model_dir.name] = versions
    return found


def _versions(model_dir: Path) -> list[str]:
    names = [p.name for p in model_dir.iterdir() if p.is_dir() and _VERSION.fullmatch(p.name)]
    return sorted(names, key=int)


def _check_name(name: str) -> None:
    # Also what keeps a name from reaching outside models_dir ("..", "/").
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"model name {name!r} is invalid: use letters, digits, '-' and '_' only")


def _names(items) -> str:
    return ", ".join(repr(item) for item in items)


def _read_meta(path: Path) -> ModelMeta:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: missing; this version was not saved by save_model") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from None
    try:
        return ModelMeta.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        where = f"field '{field}'" if field else "content"
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise InputError(f"{path}: invalid {where}: {first['msg']}{more}") from None


def _read_pipeline(path: Path) -> Pipeline:
    if not path.is_file():
        raise InputError(f"{path}: missing; this version was not saved by save_model")
    found = _check_loadable_types(path)
    try:
        pipeline = _skops_io().load(path, trusted=found)
    # The file is untrusted input: whatever goes wrong while reading it, it is not a model
    # this project can use.
    except Exception as exc:
        raise InputError(
            f"{path}: not a loadable skops file ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(pipeline, Pipeline):
        raise InputError(f"{path}: holds a {type(pipeline).__name__}, not a Pipeline")
    foreign = _foreign_part(pipeline)
    if foreign is not None:
        raise InputError(
            f"{path}: the pipeline holds {foreign}, which this project never saves; refused "
            "as it could run code when the model is used"
        )
    return pipeline


def _check_loadable_types(path: Path) -> list[str]:
    """The types skops must be told to trust for ``path``, all in :data:`TRUSTED_TYPES`."""
    try:
        found = _skops_io().get_untrusted_types(file=path)
    # A pickle, random bytes or a zip without a skops schema: each raises its own error.
    except Exception as exc:
        raise InputError(f"{path}: not a skops file ({type(exc).__name__}: {exc})") from None
    foreign = [t for t in found if t not in TRUSTED_TYPES]
    if foreign:
        raise InputError(
            f"{path}: holds type {foreign[0]!r}, which this project never saves; refused "
            "without loading, as loading it could run code"
        )
    return found


def _foreign_part(obj) -> str | None:
    """An estimator class or a function in ``obj`` that a saved pipeline never holds, or None."""
    seen = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BaseEstimator):
            name = _qualified_name(type(item))
            if name not in SAVED_ESTIMATOR_TYPES:
                return f"estimator {name!r}"
            # Fitted attributes too: a ColumnTransformer's fitted transformers_ need not be
            # its transformers parameter.
            stack.extend(vars(item).values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(
            item,
            types.FunctionType
            | types.BuiltinFunctionType
            | types.MethodType
            | functools.partial
            | np.ufunc,
        ):
            return f"function {_qualified_name(item)!r}"
    return None


def _qualified_name(obj) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', repr(obj)))}"


def _flush_to_disk(file) -> None:
    # Without it a power cut soon after the rename may leave a version whose files are empty.
    file.flush()
    os.fsync(file.fileno())


def _sync_directory(path: Path) -> None:
    # Makes the rename itself durable. Best effort: Windows cannot open a directory, and
    # some file systems refuse to sync one; the version is complete either way.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
