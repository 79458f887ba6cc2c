"""The experiment config file: what to simulate, validated before anything runs.

An experiment is a TOML file naming the data, the model, the strategies, the initial labeled
sample, the batch size and budget, the seeds, the test split and an optional noisy oracle.
Every mistake is reported as one line naming the file and the field, for example
``digits.toml: strategies.1.name: unknown strategy 'marginn'``. This module reads no data
and fits no model.

Examples
--------
>>> config = parse_config('''
... data = { sklearn = "iris" }
... model = "logistic_regression"
... strategies = ["random", { name = "margin" }]
... initial = { size = 6, method = "stratified" }
... batch_size = 3
... n_rounds = 4
... seeds = 2
... ''')
>>> [s.key for s in config.strategies], config.seed_list, config.batch_sizes
(['random', 'margin'], [0, 1], [3, 3, 3, 3])
>>> config.final_size
18
"""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from active_labeling.errors import InputError
from active_labeling.experiment.labelers import LabelersSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits")
"""Data sets shipped inside scikit-learn, usable as ``data = {sklearn = NAME}``."""


# Set by the harness for every run and iteration; a config may not fix them.
_HARNESS_PARAMS = {"classifier", "batch_size", "random_state", "prefit", "oracle"}
_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def known_strategies() -> dict[str, type]:
    """Strategy name to class: the library's strategies, ``auto``, then the simulation-only
    ones.

    Simulation-only strategies (``experiment.oracle.ORACLE_STRATEGIES``) read the true
    labels, so they exist in an experiment and never in a labeling project.
    """
    from active_labeling.samplers.auto import AutoStrategy
    from active_labeling.samplers.registry import STRATEGIES

    strategies = {**STRATEGIES, "auto": AutoStrategy}
    try:
        from active_labeling.experiment.oracle import ORACLE_STRATEGIES
    except ImportError:
        ORACLE_STRATEGIES = {}
    strategies.update(ORACLE_STRATEGIES)
    return strategies


def generators() -> dict:
    """Generator name to function ``f(random_state, **params) -> (X, y, noisy)``."""
    try:
        from active_labeling.experiment.synthetic import GENERATORS
    except ImportError:  # pragma: no cover - the synthetic module ships with the package
        return {}
    return dict(GENERATORS)


def _resolve(path: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    resolved = Path(path).expanduser()
    if base is not None and not resolved.is_absolute():
        resolved = Path(base) / resolved
    return str(resolved.resolve())


class DataSource(_Strict):
    """Where the labeled rows come from: exactly one of ``sklearn``, ``file``, ``project``
    or ``generator``.

    - ``sklearn``: a data set shipped with scikit-learn (``iris``, ``wine``,
      ``breast_cancer``, ``digits``).
    - ``file``: a CSV or Parquet file, with its ``label`` column, optional ``features``
      (default: every other column but ``id``) and optional ``id`` column.
    - ``project``: a project folder and its ``dataset``; the labels are the dataset's
      ``label`` column when given, else the project's current labels.
    - ``generator``: synthetic data (``noisy_blobs_ld``, ``noisy_blobs_hd`` of
      ``experiment.synthetic``) drawn once with ``random_state``, with ``params`` passed on
      to the generator; the samples it marks noisy are counted in the labeled set.

    A relative ``file`` or ``project`` is read from the config file's folder.
    """

    sklearn: Literal["iris", "wine", "breast_cancer", "digits"] | None = None
    file: str | None = None
    project: str | None = None
    generator: str | None = None
    dataset: str | None = None
    label: str | None = None
    #: Multi-label files: the 0/1 column of each class (instead of ``label``).
    labels: list[str] | None = Field(default=None, min_length=1)
    features: list[str] | None = Field(default=None, min_length=1)
    id: str | None = None
    random_state: int = Field(default=0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("file", "project")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _resolve(value, info)

    @field_validator("generator")
    @classmethod
    def _known_generator(cls, value: str | None) -> str | None:
        if value is not None and value not in generators():
            raise ValueError(
                f"unknown generator {value!r}; choose one of {', '.join(generators())}"
            )
        return value

    @field_validator("file")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if Path(value).suffix.lower() not in (".csv", ".parquet"):
            raise ValueError(f"{value}: give a .csv or .parquet file")
        if not Path(value).is_file():
            raise ValueError(f"{value}: no such file")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        given = [k for k in ("sklearn", "file", "project", "generator") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of sklearn, file, project, generator"
                + (f" (got {', '.join(given)})" if given else "")
            )
        kind = given[0]
        allowed = {
            "sklearn": set(),
            "file": {"label", "labels", "features", "id"},
            "project": {"dataset", "label", "features"},
            "generator": {"random_state", "params"},
        }[kind]
        for name in ("dataset", "label", "labels", "features", "id", "params"):
            if name not in allowed and getattr(self, name):
                raise ValueError(f"{name} does not apply to a {kind} source")
        if "random_state" not in allowed and self.random_state != 0:
            raise ValueError(f"random_state does not apply to a {kind} source")
        if kind == "file" and bool(self.label) == bool(self.labels):
            raise ValueError(
                "a file source needs its label column, label = 'COLUMN', or for multi-label "
                "data the 0/1 column of each class, labels = ['A', 'B', ...]"
            )
        if kind == "project" and not self.dataset:
            raise ValueError("a project source needs its dataset: dataset = 'NAME'")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("sklearn", "file", "project", "generator") if getattr(self, k))


class ModelSpec(_Strict):
    """The classifier refitted at every iteration.

    ``name`` is one of ``active_labeling.models.training.CLASSIFIERS``; ``params`` override
    its constructor parameters; ``standardize`` puts a ``StandardScaler`` before it. Every
    ``random_state`` is set by the harness, from the seed and the iteration.

    ``multi_label_method`` makes the classifier multi-label on multi-label data:
    ``one_vs_rest`` (one binary model per class) or ``classifier_chain``; the harness
    predicts a class where its probability reaches 0.5 (it does not tune thresholds).

    ``strategy_features`` says where the distance strategies (k-center, the k-means family,
    BADGE, TypiClust) measure distances: ``model`` (the default), in the model's feature
    space, after its preprocessing, with its final estimator as the classifier, as the
    query-sampler recipe does; ``input``, on the features as loaded. They differ only when
    the model has preprocessing (``standardize``).
    """

    name: str = "logistic_regression"
    params: dict[str, Any] = Field(default_factory=dict)
    standardize: bool = False
    strategy_features: Literal["model", "input"] = "model"
    #: Multi-label data: one binary model per class, or a classifier chain.
    multi_label_method: Literal["one_vs_rest", "classifier_chain"] = "one_vs_rest"

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from active_labeling.models.training import CLASSIFIERS

        if name not in CLASSIFIERS:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(CLASSIFIERS)}")
        return name

    @model_validator(mode="after")
    def _params_exist(self) -> ModelSpec:
        from sklearn.base import clone

        if "random_state" in self.params:
            raise ValueError("params.random_state is set by the harness (from the seeds)")
        estimator = _classifier(self.name)
        known = estimator.get_params(deep=False)
        for key in self.params:
            if key not in known:
                raise ValueError(
                    f"params.{key}: {self.name} has no such parameter; it takes "
                    f"{', '.join(sorted(known))}"
                )
        estimator = clone(estimator).set_params(**self.params)
        check = getattr(estimator, "_validate_params", None)
        if check is not None:  # scikit-learn >= 1.2 validates values before fitting
            try:
                check()
            except ValueError as exc:
                raise ValueError(f"params: {exc}") from None
        return self

    def build(self, multilabel: bool = False):
        """A new unfitted classifier (a pipeline when ``standardize``); for multi-label data,
        made multi-label by ``multi_label_method`` (``models.multilabel``)."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        estimator = _classifier(self.name).set_params(**self.params)
        if multilabel:
            from active_labeling.models.multilabel import multilabel_estimator

            estimator = multilabel_estimator(estimator, self.multi_label_method)
        return make_pipeline(StandardScaler(), estimator) if self.standardize else estimator


def _classifier(name: str):
    from active_labeling.models.training import CLASSIFIERS

    return CLASSIFIERS[name](0)


class StrategySpec(_Strict):
    """One strategy to compare: a registered ``name``, its ``params``, and a ``label``
    naming its runs (default: the name), so one strategy may appear with two settings."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(default=None, pattern=_KEY_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known(self) -> StrategySpec:
        strategies = known_strategies()
        if self.name not in strategies:
            raise ValueError(
                f"unknown strategy {self.name!r}; choose one of {', '.join(strategies)}"
            )
        accepted = set(inspect.signature(strategies[self.name]).parameters)
        for key in self.params:
            if key in _HARNESS_PARAMS:
                raise ValueError(f"params.{key} is set by the harness")
            if key not in accepted:
                raise ValueError(
                    f"params.{key}: strategy {self.name!r} has no such parameter; it takes "
                    f"{', '.join(sorted(accepted - _HARNESS_PARAMS)) or 'none'}"
                )
        return self

    @property
    def key(self) -> str:
        """The strategy's folder name under ``runs/`` and its name in reports."""
        return self.label or self.name


class InitialSpec(_Strict):
    """The labeled sample before the first query: ``size`` rows drawn at ``random`` (with
    at least two classes) or ``stratified`` (``size`` split evenly over the classes)."""

    size: int = Field(default=10, ge=1)
    method: Literal["random", "stratified"] = "random"

    @model_validator(mode="before")
    @classmethod
    def _from_int(cls, value):
        return {"size": value} if isinstance(value, int) and not isinstance(value, bool) else value


class SplitSpec(_Strict):
    """The held-out rows accuracy is measured on.

    ``fraction`` of the rows, drawn per seed (stratified by class unless ``stratify`` is
    false); or ``swap_halves``: the rows split in half per seed, each half serving once as
    the pool and once as the test set (two runs per seed, as in the tutorial's Table 1).
    Written ``test = 0.3`` or ``test = "swap_halves"`` for short.
    """

    fraction: float = Field(default=0.5, gt=0, lt=1)
    swap_halves: bool = False
    stratify: bool = True

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value):
        if isinstance(value, str):
            if value.replace(" ", "_") != "swap_halves":
                raise ValueError(f"write a fraction or 'swap_halves', not {value!r}")
            return {"swap_halves": True}
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"fraction": value}
        return value

    @model_validator(mode="after")
    def _halves(self) -> SplitSpec:
        if self.swap_halves and self.fraction != 0.5:
            raise ValueError("swap_halves splits in half; leave fraction out")
        return self

    @property
    def halves(self) -> list[int | None]:
        """The split index of each run of a seed: ``[0, 1]`` when swapping, else ``[None]``."""
        return [0, 1] if self.swap_halves else [None]


class MonitoringSpec(_Strict):
    """Settings of the monitoring metrics logged at every iteration."""

    enabled: bool = True
    contradiction_sample: int = Field(default=1000, ge=10)
    uncertainty_window: int = Field(default=3, ge=2)
    #: Test rows (at most) of a small holdout the team labels aside; 0 logs no holdout.
    holdout_size: int = Field(default=100, ge=0)


class ExperimentConfig(_Strict):
    """A whole experiment file. See the module docstring and ``docs/experiment.md``."""

    name: str | None = None
    data: DataSource
    model: ModelSpec = Field(default_factory=ModelSpec)
    strategies: list[StrategySpec] = Field(min_length=1)
    initial: InitialSpec = Field(default_factory=InitialSpec)
    batch_size: int = Field(default=10, ge=1)
    budget: int | None = Field(default=None, ge=1)
    n_rounds: int | None = Field(default=None, ge=1)
    seeds: int | list[int] = 20
    test: SplitSpec = Field(default_factory=SplitSpec)
    label_noise: float = Field(default=0.0, ge=0, lt=1)
    #: Simulated labelers instead of one oracle (experiment.labelers).
    labelers: LabelersSpec | None = None
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)

    @field_validator("model", mode="before")
    @classmethod
    def _model_by_name(cls, value):
        return {"name": value} if isinstance(value, str) else value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("give a positive number of seeds, or a list of seeds")
            return value
        if not value:
            raise ValueError("the list of seeds is empty")
        if min(value) < 0:
            raise ValueError("seeds must be non-negative")
        if len(set(value)) != len(value):
            raise ValueError("a seed is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        keys = [s.key for s in self.strategies]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(
                f"strategy {twice[0]!r} is listed twice; give each setting its own label"
            )
        if (self.budget is None) == (self.n_rounds is None):
            raise ValueError("give either budget (labels at the end) or n_rounds, not both")
        if self.labelers is not None and self.label_noise > 0:
            raise ValueError("give label_noise (one noisy oracle) or labelers, not both")
        if self.budget is not None and self.budget <= self.initial.size:
            raise ValueError(
                f"budget={self.budget} must exceed the initial size ({self.initial.size})"
            )
        return self

    # -- derived -----------------------------------------------------------------------------
    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def batch_sizes(self) -> list[int]:
        """Rows labeled at each round; with a budget, the last batch is cut to meet it."""
        if self.n_rounds is not None:
            return [self.batch_size] * self.n_rounds
        extra = self.budget - self.initial.size
        rounds = math.ceil(extra / self.batch_size)
        return [self.batch_size] * (rounds - 1) + [extra - self.batch_size * (rounds - 1)]

    @property
    def final_size(self) -> int:
        return self.initial.size + sum(self.batch_sizes)

    @property
    def title(self) -> str:
        return self.name or ", ".join(s.key for s in self.strategies)

    def to_toml(self) -> str:
        """The config as TOML, with absolute paths; ``parse_config`` reads it back equal."""
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))


def parse_config(text: str, *, source: str = "config", base_dir: Path | str | None = None):
    """Validate a config's TOML text; ``source`` names it in error messages.

    Raises
    ------
    InputError
        Invalid TOML, or a field with a bad value: ``source: field.path: message``.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML: {exc}") from None
    try:
        return ExperimentConfig.model_validate(
            data, context={"base_dir": str(base_dir) if base_dir is not None else None}
        )
    except ValidationError as exc:
        raise config_error(source, exc) from None


def config_error(source: str, exc: ValidationError) -> InputError:
    """One line for the first problem of ``exc``: ``source: field.path: message``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InputError(f"{source}: {where}: {message}{more}")


def load_config(path: Path | str) -> ExperimentConfig:
    """Read and validate an experiment file; relative data paths are read from its folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such experiment file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    return parse_config(text, source=str(path), base_dir=path.resolve().parent)
