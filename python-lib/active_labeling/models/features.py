"""What kind of feature each column is, and the preprocessing that turns columns into numbers.

A column is numeric, categorical or text; :func:`infer_column_kinds` decides which and
:func:`build_preprocessor` builds the matching scikit-learn ``ColumnTransformer``. The
preprocessor is made only of scikit-learn classes with plain parameters (no function, no
class of this project), so that a saved model loads with skops without trusting any code.
It owns missing values, so a pool goes to the fitted pipeline unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from active_labeling.errors import InputError

FEATURE_KINDS = ("numeric", "categorical", "text")

# The free-text rule of infer_column_kinds, measured on at most TEXT_SAMPLE_SIZE values.
TEXT_MIN_MEDIAN_TOKENS = 3
TEXT_MIN_MEAN_LENGTH = 30
TEXT_MIN_DISTINCT_RATIO = 0.5
TEXT_SAMPLE_SIZE = 1000

# TfidfVectorizer's default token pattern: a text column without one such word would fit an
# empty vocabulary, which scikit-learn reports without naming the column.
_WORD = re.compile(r"(?u)\b\w\w+\b")


def infer_column_kinds(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    text_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
) -> dict[str, str]:
    """Map each feature column to ``"numeric"``, ``"categorical"`` or ``"text"``.

    Columns named in ``text_columns`` or ``categorical_columns`` get that kind. The others
    are decided by dtype and, for strings, by their values:

    - bool and numeric dtypes (including pandas nullable ones) are numeric;
    - a pandas ``category`` dtype is categorical;
    - string and object columns are text when they look like free text: the median number
      of whitespace-separated tokens is at least 3, or the mean length is above 30
      characters with more than half the values distinct. Otherwise they are categorical.
      The rule looks at up to 1000 non-missing values spread over the column.

    Parameters
    ----------
    frame : DataFrame
        The training data; it must hold every column of ``columns``.
    columns : sequence of str
        The feature columns, in order.
    text_columns, categorical_columns : sequence of str
        Columns whose kind is given rather than inferred; each must be in ``columns``.
        A numeric column may be declared categorical (codes, ids) but not text.

    Returns
    -------
    dict of str to str
        The kind of each column, in the order of ``columns``.

    Raises
    ------
    InputError
        A column missing from ``frame`` (the message lists the available ones), a column
        whose values are all missing, a dtype that none of the kinds can take (dates,
        pandas ``string`` whose missing value is ``pd.NA``), a text column without any
        word, or inconsistent explicit lists.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({
    ...     "amount": [12.5, 3.0, 7.25],
    ...     "country": ["FR", "DE", "FR"],
    ...     "comment": ["late again and broken", "fine thanks", "never arrived at all"],
    ... })
    >>> infer_column_kinds(frame, ["amount", "country", "comment"])
    {'amount': 'numeric', 'country': 'categorical', 'comment': 'text'}
    >>> infer_column_kinds(frame, ["amount", "comment"], categorical_columns=["comment"])
    {'amount': 'numeric', 'comment': 'categorical'}
    """
    columns = _column_list(columns, "feature columns")
    text_columns = _column_list(text_columns, "text_columns")
    categorical_columns = _column_list(categorical_columns, "categorical_columns")
    if not columns:
        raise InputError("feature columns: no column given; name at least one")
    not_names = [c for c in columns if not isinstance(c, str)]
    if not_names:
        # ColumnTransformer reads an int as a position, which would silently pick another
        # column from a pool whose columns come in another order.
        raise InputError(
            f"feature columns must be column names (str), got {_names(not_names)}; "
            "rename the columns of the data, e.g. frame.columns.astype(str)"
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise InputError(f"feature columns: {_names(duplicated)} listed more than once")
    for what, explicit in [
        ("text_columns", text_columns),
        ("categorical_columns", categorical_columns),
    ]:
        stray = [c for c in explicit if c not in columns]
        if stray:
            raise InputError(
                f"{what}: {_names(stray)} not among the feature columns ({_names(columns)})"
            )
    both = [c for c in text_columns if c in categorical_columns]
    if both:
        raise InputError(f"{_names(both)} listed both in text_columns and categorical_columns")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"feature column {_names(missing)} not in the data; "
            f"available columns: {_names(map(str, frame.columns))}"
        )
    if len(frame) == 0:
        raise InputError("the data has no row: column kinds cannot be inferred")

    kinds = {}
    for column in columns:
        values = frame[column]
        if values.isna().all():
            raise InputError(
                f"column {column!r} has no value (all {len(values)} rows are missing); "
                "drop it from the feature columns"
            )
        if column in text_columns:
            kind = "text"
        elif column in categorical_columns:
            kind = "categorical"
        else:
            kind = _inferred_kind(column, values)
        _check_dtype_fits(column, values, kind)
        kinds[column] = kind
    return kinds


def build_preprocessor(
    kinds: Mapping[str, str], *, dense: bool = False, max_text_features: int | None = None
) -> ColumnTransformer:
    """An unfitted ``ColumnTransformer`` turning the feature columns into one matrix.

    - numeric columns: missing values replaced by the median, then standardized;
    - categorical columns: one-hot encoded, a missing value being a category of its own and
      categories unseen in training encoded as all zeros (``handle_unknown="ignore"``);
    - text columns: one TF-IDF vectorizer per column, a missing value read as an empty text.

    Columns are selected by name, so the data given to ``transform`` may hold other columns
    in any order.

    Parameters
    ----------
    kinds : mapping of str to str
        Column to kind, as returned by :func:`infer_column_kinds`.
    dense : bool
        Return a dense array even when the one-hot and TF-IDF parts are sparse, for
        classifiers that need dense input.
    max_text_features : int or None
        Keep at most this many words per text column (the most frequent), to bound the
        width of a dense matrix. None keeps them all.

    Returns
    -------
    ColumnTransformer

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"amount": [1.0, None, 3.0], "country": ["FR", "DE", None]})
    >>> pre = build_preprocessor({"amount": "numeric", "country": "categorical"})
    >>> pre.fit_transform(frame).shape   # amount + FR, DE and missing
    (3, 4)
    """
    unknown = {column: kind for column, kind in kinds.items() if kind not in FEATURE_KINDS}
    if unknown:
        column, kind = next(iter(unknown.items()))
        raise InputError(
            f"column {column!r} has kind {kind!r}; kinds are {', '.join(FEATURE_KINDS)}"
        )
    if not kinds:
        raise InputError("no feature column to preprocess")
    numeric = [c for c, kind in kinds.items() if kind == "numeric"]
    categorical = [c for c, kind in kinds.items() if kind == "categorical"]
    text = [c for c, kind in kinds.items() if kind == "text"]

    transformers = []
    if numeric:
        # keep_empty_features: a column missing in every row of a cross-validation fold
        # still gets a column, so all folds have the same width.
        numeric_steps = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
            ]
        )
        transformers.append(("numeric", numeric_steps, numeric))
    if categorical:
        # No imputer: the encoder already treats NaN and None as a category of their own,
        # for string and numeric columns alike, where a constant fill value would have to
        # match the column's type.
        transformers.append(("categorical", OneHotEncoder(handle_unknown="ignore"), categorical))
    for position, column in enumerate(text):
        # Transformer names may not contain "__" (the parameter separator).
        name = f"text:{column}" if "__" not in column else f"text:{position}"
        transformers.append((name, _text_steps(max_text_features), [column]))
    return ColumnTransformer(transformers, sparse_threshold=0.0 if dense else 0.3)


def _text_steps(max_text_features: int | None) -> Pipeline:
    # SimpleImputer's NaN marker does not match None in an object column (it tests x != x),
    # hence a second imputer for None; it must come second because an imputer whose marker
    # is None refuses data that still holds NaN. The imputers return a 2-D array and
    # TfidfVectorizer wants 1-D documents: an inner ColumnTransformer selecting the scalar
    # column 0 passes it a 1-D array, with no function of ours in the saved model.
    return Pipeline(
        [
            ("fill_nan", SimpleImputer(strategy="constant", fill_value="")),
            ("fill_none", SimpleImputer(missing_values=None, strategy="constant", fill_value="")),
            (
                "tfidf",
                # sparse_threshold=1: stay sparse, and let the outer transformer decide.
                ColumnTransformer(
                    [("tfidf", TfidfVectorizer(max_features=max_text_features), 0)],
                    sparse_threshold=1.0,
                ),
            ),
        ]
    )


def _column_list(columns, what: str) -> list[str]:
    # A string is a sequence of characters: a single name passed by mistake would
    # silently become one column per letter.
    if isinstance(columns, str):
        raise InputError(f"{what} must be a list of column names, got the string {columns!r}")
    return list(columns)


def _names(columns) -> str:
    return ", ".join(repr(c) for c in columns)


def _inferred_kind(column: str, values: pd.Series) -> str:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
    ):
        return "numeric"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "text" if _looks_like_free_text(values) else "categorical"
    raise InputError(
        f"column {column!r} has dtype {dtype}, which is neither numeric, string nor "
        "categorical; convert it (e.g. a date to a number of days) or drop it"
    )


def _looks_like_free_text(values: pd.Series) -> bool:
    present = values.dropna()
    # Evenly spaced rather than the head: files are often sorted by a column.
    step = max(1, len(present) // TEXT_SAMPLE_SIZE)
    sample = present.iloc[::step].iloc[:TEXT_SAMPLE_SIZE].astype(str)
    if sample.str.split().str.len().median() >= TEXT_MIN_MEDIAN_TOKENS:
        return True
    return (
        sample.str.len().mean() > TEXT_MIN_MEAN_LENGTH
        and sample.nunique() / len(sample) > TEXT_MIN_DISTINCT_RATIO
    )


def _check_dtype_fits(column: str, values: pd.Series, kind: str) -> None:
    dtype = values.dtype
    is_number = pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype)
    if kind == "text" and is_number:
        raise InputError(
            f"column {column!r} is numeric ({dtype}) and cannot be text; "
            "declare it categorical or leave it numeric"
        )
    if kind in ("text", "categorical") and isinstance(dtype, pd.StringDtype):
        if dtype.na_value is pd.NA:
            # The imputers and the encoder compare values with NaN or None; comparing
            # with pd.NA raises. Checked on the dtype, not on the values, because a pool
            # of the same dtype may hold pd.NA where the training data did not.
            raise InputError(
                f"column {column!r} has dtype {dtype}, whose missing value pd.NA the "
                f"model cannot read; convert it with frame[{column!r}].astype('str')"
            )
    if kind == "text" and not any(_WORD.search(str(v)) for v in values.dropna()):
        raise InputError(
            f"text column {column!r} has no word of two or more letters or digits, so "
            "TF-IDF finds nothing to learn from; declare it categorical or drop it"
        )
