"""The experiment config file and the data sources it names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from active_labeling.errors import InputError
from active_labeling.experiment.config import load_config, parse_config
from active_labeling.experiment.data import load_data, read_snapshot, write_snapshot

from flow_helpers import make_project

BASE = 'data = { sklearn = "iris" }\nstrategies = ["random", "margin"]\nn_rounds = 3\n'


def test_a_valid_config_and_what_it_implies():
    config = parse_config(
        BASE.replace("n_rounds = 3\n", "budget = 27\n")
        + 'initial = 5\nbatch_size = 10\nseeds = [4, 7]\ntest = "swap_halves"\n'
        + 'model = { name = "random_forest", params = { n_estimators = 10, max_depth = 3 } }\n'
    )
    # 5 initial, then 10 + 10 + the last batch cut to 2 to end at the budget of 27.
    assert config.batch_sizes == [10, 10, 2] and config.final_size == 27
    assert config.seed_list == [4, 7] and config.test.halves == [0, 1]
    assert config.model.build().get_params()["max_depth"] == 3
    assert config.initial.method == "random" and config.initial.size == 5
    # The copy written into the experiment folder reads back equal.
    assert parse_config(config.to_toml()) == config


def test_defaults_are_twenty_seeds_and_half_the_rows_held_out():
    config = parse_config(BASE)
    assert config.seed_list == list(range(20))
    assert config.test.fraction == 0.5 and not config.test.swap_halves
    assert config.label_noise == 0


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (BASE.replace('"margin"', '"marginn"'), "strategies.1", "unknown strategy 'marginn'"),
        (
            BASE.replace('"margin"', '{ name = "wkmeans", params = { bta = 3 } }'),
            "strategies.1",
            "params.bta: strategy 'wkmeans' has no such parameter",
        ),
        (
            BASE.replace('"margin"', '{ name = "margin", params = { batch_size = 3 } }'),
            "strategies.1",
            "params.batch_size is set by the harness",
        ),
        (BASE.replace('"margin"', '"random"'), "(top level)", "'random' is listed twice"),
        (BASE + 'model = { name = "svm" }\n', "model.name", "unknown model 'svm'"),
        (
            BASE + 'model = { name = "random_forest", params = { n_trees = 3 } }\n',
            "model",
            "params.n_trees: random_forest has no such parameter",
        ),
        (
            BASE + 'model = { name = "random_forest", params = { max_depth = -1 } }\n',
            "model",
            "max_depth",
        ),
        (BASE + "budget = 50\n", "(top level)", "either budget"),
        (BASE + "seeds = 0\n", "seeds", "positive number of seeds"),
        (BASE + "label_noise = 1.5\n", "label_noise", "less than 1"),
        (BASE + 'test = "swap"\n', "test", "'swap_halves'"),
        (BASE + "test = { swap_halves = true, fraction = 0.3 }\n", "test", "in half"),
        (BASE + 'initial = { size = 5, method = "clustered" }\n', "initial.method", "random"),
        (BASE + "sedes = 3\n", "sedes", "Extra inputs are not permitted"),
        (
            BASE.replace('sklearn = "iris"', 'sklearn = "iris", generator = "noisy_blobs_ld"'),
            "data",
            "exactly one of sklearn, file, project, generator",
        ),
        (BASE.replace('sklearn = "iris"', 'sklearn = "iris", label = "y"'), "data", "label"),
        (BASE.replace('sklearn = "iris"', 'generator = "blobs"'), "data.generator", "blobs"),
        (BASE.replace('sklearn = "iris"', 'file = "nowhere.csv", label = "y"'), "data.file", ""),
        (BASE.replace("n_rounds = 3", "n_rounds = 3 3"), "not valid TOML", ""),
    ],
)
def test_each_mistake_names_the_file_and_the_field(text, where, message):
    with pytest.raises(InputError) as caught:
        parse_config(text, source="exp.toml")
    text = str(caught.value)
    assert text.startswith(f"exp.toml: {where}"), text
    assert message in text


def test_a_file_source_is_read_from_the_config_folder(tmp_path):
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "rows.csv").write_text(
        "id,size,colour,kind\n"
        + "".join(
            f"r{i},{i % 7 + 0.5},{['red', 'blue'][i % 2]},{['cat', 'dog'][i % 3 == 0]}\n"
            for i in range(30)
        ),
        encoding="utf-8",
    )
    path = folder / "exp.toml"
    path.write_text(
        'data = { file = "rows.csv", label = "kind", id = "id" }\n'
        'strategies = ["random"]\nn_rounds = 2\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.data.file == str((folder / "rows.csv").resolve())
    data = load_data(config.data)
    # size is numeric; colour is categorical and goes through one-hot encoding.
    assert data.X.shape == (30, 3) and np.isfinite(data.X).all()
    assert sorted(set(data.y)) == ["cat", "dog"] and data.row_ids[3] == "r3"
    # The snapshot reads back the same rows.
    write_snapshot(data, tmp_path / "data.parquet")
    again = read_snapshot(tmp_path / "data.parquet")
    assert np.array_equal(again.X, data.X) and np.array_equal(again.y, data.y)
    assert np.array_equal(again.row_ids, data.row_ids)


def test_file_rows_without_a_label_or_with_a_repeated_id_are_named(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,x,y\na,1,p\nb,2,\nc,3,q\n", encoding="utf-8")
    config = parse_config(
        f'data = {{ file = "{path}", label = "y", id = "id" }}\nstrategies = ["random"]\n'
        "n_rounds = 1\n"
    )
    with pytest.raises(InputError, match="column 'y' has no label at row 1"):
        load_data(config.data)
    path.write_text("id,x,y\na,1,p\nb,2,q\na,3,q\n", encoding="utf-8")
    with pytest.raises(InputError, match="id 'a' in column 'id' is repeated at row 2"):
        load_data(config.data)
    path.write_text("id,x,y\na,1,p\nb,2,q\n", encoding="utf-8")
    bad = parse_config(
        f'data = {{ file = "{path}", label = "label" }}\nstrategies = ["random"]\nn_rounds = 1\n'
    )
    with pytest.raises(InputError, match="no column 'label'; the columns are id, x, y"):
        load_data(bad.data)


def test_a_project_source_takes_the_current_labels(tmp_path):
    project = make_project(tmp_path / "p", n=60, n_labels=20)
    config = parse_config(
        f'data = {{ project = "{project.root}", dataset = "pool" }}\n'
        'strategies = ["random"]\nn_rounds = 1\n'
    )
    data = load_data(config.data)
    assert data.X.shape[0] == 20 and sorted(set(data.y)) == ["no", "yes"]
    assert set(data.row_ids) <= {f"I{i}" for i in range(60)}


def test_a_generator_source_marks_the_noisy_rows():
    config = parse_config(
        'data = { generator = "noisy_blobs_ld", random_state = 3, params = { n_samples = 200,'
        " n_blobs = 10, n_noisy_blobs = 4, n_classes = 2 } }\n"
        'strategies = ["random"]\nn_rounds = 1\n'
    )
    data = load_data(config.data)
    assert data.X.shape == (200, 2) and data.noisy is not None
    assert 0 < data.noisy.sum() < 200
    assert np.array_equal(load_data(config.data).X, data.X)  # seeded


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parents[1] / "examples" / "experiments").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_the_shipped_example_configs_are_valid(path):
    config = load_config(path)
    assert config.strategies and config.final_size > config.initial.size
