"""The experiment report: files, tables, escaping, and the statistics behind them."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from active_labeling.cli import main
from active_labeling.errors import InputError
from active_labeling.experiment.report import (
    auc_table,
    bootstrap_interval,
    curve_band,
    paired_comparison,
    write_report,
)
from active_labeling.experiment.runner import create_experiment, run_experiment

HOSTILE = '<img src=x onerror="alert(1)"> & co'

CONFIG = f"""
name = '{HOSTILE}'
data = {{ sklearn = "wine" }}
model = {{ name = "logistic_regression", standardize = true }}
strategies = ["random", "margin", {{ name = "entropy", label = "entropy-2" }}]
initial = {{ size = 6, method = "stratified" }}
batch_size = 4
n_rounds = 3
seeds = 3
"""


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    (folder / "exp.toml").write_text(CONFIG, encoding="utf-8")
    out = folder / "exp"
    create_experiment(folder / "exp.toml", out)
    run_experiment(out, n_jobs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def page(experiment):
    assert main(["experiment", "report", str(experiment)]) == 0
    return experiment / "report" / "index.html"


def test_the_report_writes_a_page_plots_and_tables(experiment, page):
    folder = experiment / "report"
    pngs = {p.name for p in folder.glob("*.png")}
    assert {"learning_curves.png", "metric_macro_f1.png", "metric_contradiction_ratio.png"} <= pngs
    assert all((folder / name).read_bytes().startswith(b"\x89PNG") for name in pngs)
    html = page.read_text(encoding="utf-8")
    for name in pngs:
        assert f'src="{name}"' in html
    aucs = pd.read_csv(folder / "auc.csv")
    assert aucs["strategy"].tolist() == ["random", "margin", "entropy-2"]
    assert (aucs["runs"] == 3).all()
    # Every row of the AUC table is on the page, with its numbers.
    table = html.split('<table class="auc">')[1].split("</table>")[0]
    for record in aucs.to_dict("records"):
        row = f"<tr><td>{record['strategy']}</td><td>3</td><td>{record['auc_trapezoid']:.1f}</td>"
        assert row in table
        assert (
            record["auc_trapezoid_low"] <= record["auc_trapezoid"] <= record["auc_trapezoid_high"]
        )
    comparison = pd.read_csv(folder / "comparison.csv")
    assert comparison["strategy"].tolist() == ["margin", "entropy-2"]
    assert "# " in (folder / "summary.md").read_text(encoding="utf-8")


def test_the_page_escapes_data_strings_and_loads_nothing_from_outside(page):
    html = page.read_text(encoding="utf-8")
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co" in html
    assert "<script" not in html.lower()
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all("/" not in s and ":" not in s for s in sources)


def test_the_tables_are_the_same_twice(experiment, page):
    from active_labeling.experiment.cache import ExperimentDir, load_iterations, run_summaries

    exp = ExperimentDir(experiment)
    runs = run_summaries(exp, load_iterations(exp))
    assert auc_table(runs).to_csv(index=False) == (page.parent / "auc.csv").read_text()
    assert paired_comparison(runs, "random").equals(paired_comparison(runs, "random"))


def test_a_report_needs_complete_runs(tmp_path):
    (tmp_path / "exp.toml").write_text(CONFIG, encoding="utf-8")
    create_experiment(tmp_path / "exp.toml", tmp_path / "exp")
    with pytest.raises(InputError, match="no complete run yet"):
        write_report(tmp_path / "exp")


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).normal(10, 2, size=30)
    low, high = bootstrap_interval(values, random_state=1)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_interval(values, random_state=1)
    assert (low, high) != bootstrap_interval(values, random_state=2)
    # Roughly the normal interval: mean ± 1.96 standard errors.
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(30)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.25)
    assert np.isnan(bootstrap_interval([1.0])[0])


def test_curve_band_ignores_the_missing_first_value():
    matrix = np.array([[np.nan, 1.0, 2.0], [np.nan, 3.0, 4.0]])
    mean, low, high = curve_band(matrix, random_state=0)
    assert np.isnan(mean[0]) and mean[1:].tolist() == [2.0, 3.0]
    assert (low[1:] <= mean[1:]).all() and (mean[1:] <= high[1:]).all()


def test_paired_comparison_counts_wins_by_seed_and_tests_the_differences():
    random_auc = [50.0, 60.0, 55.0, 58.0, 52.0, 61.0]
    margin_auc = [53.0, 59.0, 58.0, 62.0, 52.0, 66.0]
    runs = pd.DataFrame(
        {
            "strategy": ["random"] * 6 + ["margin"] * 6,
            "seed": list(range(6)) * 2,
            "half": [-1] * 12,
            "auc_trapezoid": random_auc + margin_auc,
        }
    )
    # Shuffled rows: pairing goes by seed, not by position.
    runs = runs.sample(frac=1, random_state=0)
    row = paired_comparison(runs, "random").iloc[0]
    diff = np.subtract(margin_auc, random_auc)
    assert (row["wins"], row["losses"], row["ties"]) == (4, 1, 1)
    assert row["win_rate"] == pytest.approx(4.5 / 6)
    assert row["mean_difference"] == pytest.approx(diff.mean())
    assert row["wilcoxon_p"] == pytest.approx(wilcoxon(diff).pvalue)
    assert row["difference_low"] < diff.mean() < row["difference_high"]


def test_auc_table_means_and_spread():
    runs = pd.DataFrame(
        {
            "strategy": ["a", "a", "a", "b", "b", "b"],
            "auc_trapezoid": [10.0, 20.0, 30.0, 40.0, 40.0, 40.0],
            "auc_mean_accuracy": [11.0, 21.0, 31.0, 41.0, 41.0, 41.0],
            "final_accuracy": [0.1, 0.2, 0.3, 0.4, 0.4, 0.4],
        }
    )
    table = auc_table(runs).set_index("strategy")
    assert table.loc["a", "auc_trapezoid"] == pytest.approx(20.0)
    assert table.loc["a", "auc_trapezoid_std"] == pytest.approx(10.0)
    assert table.loc["b", "auc_mean_accuracy_low"] == table.loc["b", "auc_mean_accuracy_high"]
