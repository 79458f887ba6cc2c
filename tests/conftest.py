"""Shared fixtures (a small, seeded, three-class problem) and the run's package versions."""

from __future__ import annotations

from importlib import metadata

import pytest
from sklearn.datasets import make_classification

#: Printed at the top of every run: CI installs the newest releases, so a failure that
#: only a fresh machine shows comes with the versions that caused it.
REPORTED_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "pyarrow",
    "duckdb",
    "pydantic",
    "fastapi",
    "starlette",
    "skops",
    "dask",
    "pyspark",
    "playwright",
)


def tested_with() -> list[str]:
    """The versions of the packages this run tested, and its BLAS."""
    versions = []
    for name in REPORTED_PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    lines = ["packages: " + ", ".join(versions)]
    try:  # which BLAS kernels score the rows: they decide the last bits of a probability
        from threadpoolctl import threadpool_info

        blas = [
            f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
            f"{i.get('num_threads')} threads)"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
        lines.append("blas: " + (", ".join(blas) or "none found"))
    except Exception as error:  # pragma: no cover - informational only
        lines.append(f"blas: unknown ({error})")
    return lines


def pytest_terminal_summary(terminalreporter) -> None:
    # The summary, unlike the header, is shown under -q too (the README's test command).
    for line in tested_with():
        terminalreporter.write_line(f"tested with {line}")
    # A missing browser skips a whole module: said loudly, not only in the list of skips.
    for reason in sorted(set(_skip_reasons(terminalreporter))):
        if "the browser tests did not run" in reason or "playwright is not installed" in reason:
            terminalreporter.write_line(f"BROWSER TESTS SKIPPED: {reason}", yellow=True, bold=True)


def _skip_reasons(terminalreporter):
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            yield str(longrepr[2]).removeprefix("Skipped: ")


@pytest.fixture(scope="session")
def single_label_problem():
    """(X_labeled, y_labeled, X_pool): 30 labeled rows, 300 pool rows, 3 classes."""
    X, y = make_classification(
        n_samples=330,
        n_features=6,
        n_informative=4,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    return X[:30], y[:30], X[30:]


@pytest.fixture(scope="session")
def multilabel_problem():
    """(X_labeled, Y_labeled, X_pool): 30 labeled rows whose label sets are an indicator
    matrix of 4 classes (each held by some labeled rows and not by others), 300 pool rows."""
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(
        n_samples=330, n_features=6, n_classes=4, n_labels=2, random_state=0
    )
    assert (Y[:30].min(axis=0) == 0).all() and (Y[:30].max(axis=0) == 1).all()
    return X[:30], Y[:30], X[30:]


@pytest.fixture
def problem(request):
    """The problem of the sampler a test is parametrized with (``name``): multi-label for
    the multi-label factories of ``sampler_factories``, else ``single_label_problem``."""
    from sampler_factories import MULTI_LABEL

    callspec = getattr(request.node, "callspec", None)
    name = callspec.params.get("name") if callspec is not None else None
    if name in MULTI_LABEL:
        return request.getfixturevalue("multilabel_problem")
    return request.getfixturevalue("single_label_problem")
