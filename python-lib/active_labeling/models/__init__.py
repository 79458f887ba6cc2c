"""Saved models: train a classifier on the labels, version it on disk, load it back safely.

The train-model recipe and the CLI call :func:`train_classifier` on the labeled rows, then
:func:`save_model`; the query sampler calls :func:`load_model` and scores the pool with
``saved.pipeline``. A model is a scikit-learn pipeline (preprocessing of numeric,
categorical and text columns, then a classifier) saved with skops, which loads without
running code, beside a ``meta.json`` describing it.

Examples
--------
>>> import tempfile
>>> import pandas as pd
>>> from active_labeling.models import load_model, save_model, train_classifier
>>> frame = pd.DataFrame({
...     "amount": [3.0, 5.0, None, 40.0, 55.0, 61.0],
...     "channel": ["web", "shop", "web", "phone", "phone", None],
... })
>>> labels = ["ok", "ok", "ok", "fraud", "fraud", "fraud"]
>>> trained = train_classifier(frame, labels, feature_columns=["amount", "channel"], cv=3)
>>> with tempfile.TemporaryDirectory() as models_dir:
...     saved = save_model(models_dir, "fraud", trained)
...     loaded = load_model(models_dir, "fraud")
...     loaded.check_pool_columns(frame.columns)
...     print(loaded.version, loaded.meta.classes, loaded.pipeline.predict_proba(frame).shape)
1 ['fraud', 'ok'] (6, 2)
"""

from active_labeling.models.features import build_preprocessor, infer_column_kinds
from active_labeling.models.saved import (
    SAVED_ESTIMATOR_TYPES,
    TRUSTED_TYPES,
    SavedModel,
    list_models,
    load_model,
    save_model,
)
from active_labeling.models.training import (
    CLASSIFIERS,
    ClassifierFactory,
    CVScores,
    FoldScores,
    ModelMeta,
    TrainedModel,
    train_classifier,
)

__all__ = [
    "CLASSIFIERS",
    "SAVED_ESTIMATOR_TYPES",
    "TRUSTED_TYPES",
    "CVScores",
    "ClassifierFactory",
    "FoldScores",
    "ModelMeta",
    "SavedModel",
    "TrainedModel",
    "build_preprocessor",
    "infer_column_kinds",
    "list_models",
    "load_model",
    "save_model",
    "train_classifier",
]
