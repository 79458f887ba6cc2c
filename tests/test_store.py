"""The store: datasets with stable ids, append-only labels, queue generations, bad input."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import pytest

from active_labeling.errors import InputError, StoreLockedError
from active_labeling.store import connect, datasets, labels, queue

from flow_helpers import make_project, store_fingerprint, write_labels_csv, write_pool_csv


@pytest.fixture
def con(tmp_path):
    connection = connect(tmp_path / "store.duckdb")
    yield connection
    connection.close()


def test_csv_import_keeps_the_users_ids_and_types_columns_over_the_whole_file(con, tmp_path):
    path = tmp_path / "pool.csv"
    rows = ["code,amount,flag,note"] + [f"00{i},{i},true,n{i}" for i in range(1000)]
    rows.append("0999x,1.5,false,late text")  # a float and a new id shape on the last row
    path.write_text("\n".join(rows) + "\n")
    info = datasets.import_file(con, "pool", path, id_column="code")
    assert info.rows == 1001 and info.columns == ["code", "amount", "flag", "note"]
    schema = dict(datasets.dataset_schema(con, "pool"))
    assert schema == {
        "item_id": "VARCHAR",
        "code": "VARCHAR",  # leading zeros survive
        "amount": "DOUBLE",  # not BIGINT: the last row holds 1.5
        "flag": "BOOLEAN",
        "note": "VARCHAR",
    }
    head = datasets.head(con, "pool", 2)
    assert head["item_id"].tolist() == ["000", "001"]


def test_without_an_id_column_ids_are_row_positions_and_survive_reimport(con, tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text("a,b\n1,x\n1,x\n2,y\n1,x\n")  # duplicate rows stay distinct items
    datasets.import_file(con, "d", path)
    first = con.execute("SELECT item_id FROM dataset_d").fetchall()
    datasets.import_file(con, "d", path, replace=True)
    again = con.execute("SELECT item_id FROM dataset_d").fetchall()
    assert [r[0] for r in first] == ["1", "2", "3", "4"] == [r[0] for r in again]


def test_parquet_import_and_in_place_registration(con, tmp_path):
    frame = pd.DataFrame({"k": [10, 20, 30], "v": [0.5, None, 2.5]})
    path = tmp_path / "part.parquet"
    frame.to_parquet(path)
    copied = datasets.import_file(con, "copied", path, id_column="k")
    in_place = datasets.register_parquet(con, "inplace", str(path))
    assert copied.rows == in_place.rows == 3
    assert datasets.head(con, "copied")["item_id"].tolist() == ["10", "20", "30"]
    assert datasets.head(con, "inplace")["item_id"].tolist() == ["1", "2", "3"]
    assert (
        con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name='dataset_inplace'"
        ).fetchone()[0]
        == 1
    )
    frame.to_parquet(tmp_path / "part2.parquet")
    both = datasets.register_parquet(con, "many", str(tmp_path / "part*.parquet"))
    ids = datasets.head(con, "many", 6)["item_id"].tolist()
    assert both.rows == 6 and ids[0] == "part.parquet:1" and ids[3] == "part2.parquet:1"


def test_streaming_reads_in_bounded_batches_in_stored_order(con, tmp_path):
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 1000))
    batches = list(datasets.iter_batches(con, "pool", ["age"], batch_rows=128))
    assert max(b.num_rows for b in batches) <= 128
    ids = [i for b in batches for i in b.column("item_id").to_pylist()]
    assert ids == [str(i) for i in range(1, 1001)]
    assert batches[0].schema.names == ["item_id", "age"]


def test_export_round_trips_through_parquet_and_csv(con, tmp_path):
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 50), id_column="id")
    for suffix in ("parquet", "csv", "tsv"):
        path = datasets.export_dataset(con, "pool", tmp_path / f"out.{suffix}")
        back = (
            pd.read_parquet(path)
            if suffix == "parquet"
            else pd.read_csv(path, sep="\t" if suffix == "tsv" else ",")
        )
        assert len(back) == 50 and back.columns[0] == "item_id" and back.shape[1] == 5
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file is gone


def test_an_export_imports_again_with_item_id_as_its_id_column(con, tmp_path):
    # "item_id" is reserved, "pass it as --id-column" said the error, and that failed too.
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 50), id_column="id")
    for suffix in ("parquet", "csv"):
        path = datasets.export_dataset(con, "pool", tmp_path / f"out.{suffix}")
        info = datasets.import_file(con, f"again_{suffix}", path, id_column="item_id")
        assert "item_id" not in info.columns
        same = con.execute(
            f"SELECT count(*) FROM dataset_pool a JOIN dataset_again_{suffix} b "
            "ON a.item_id = b.item_id AND a.id = b.id"
        ).fetchone()[0]
        assert same == 50
    again = datasets.register_parquet(
        con, "view", str(tmp_path / "out.parquet"), id_column="item_id"
    )
    assert again.rows == 50 and "item_id" not in again.columns


BAD_FILES = {
    "ragged.csv": (b"a,b\n1,x\n2,y,z\n3,w\n", r"ragged\.csv line 3: expected 2 fields, found 3"),
    "latin1.csv": ("a,b\n1,caf\xe9\n".encode("latin-1"), r"latin1\.csv is not valid utf-8.*line 2"),
    "empty.csv": (b"", r"empty\.csv is empty"),
    "header.csv": (b"a,b\n", r"header\.csv has a header but no rows"),
    "twice.csv": (b"a,a\n1,2\n", r"column 'a' appears twice"),
    "reserved.csv": (b"item_id,b\n1,2\n", r"column 'item_id' is reserved"),
    "table.xlsx": (b"PK...", r"unknown file type '\.xlsx'"),
    "notes.txt": (b"a,b\n1,x\n", r"notes\.txt: unknown file type '\.txt'; the accepted ones are "),
    "broken.parquet": (b"not parquet at all", r"broken\.parquet is not a readable Parquet file"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_refused_by_name_and_leave_the_store_untouched(name, tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)
    content, message = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with project.connect() as con, pytest.raises(InputError, match=message):
        datasets.import_file(con, "pool", path, replace=True)
    assert store_fingerprint(project) == before


def _rows_with_a_stray_quote(path, stray: dict[int, str], n: int = 10_000):
    """A CSV of ``n`` rows (id, score, tag, note); row ``i`` of ``stray`` gets that note."""
    lines = ["id,score,tag,note"]
    lines += [f"r{i},0.{i},t,{stray.get(i, f'plain note {i}')}" for i in range(1, n + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


BROKEN_QUOTES = {
    # Row 5 is line 6: the Arrow reader made rows 5..10,000 one value and imported 5 rows.
    "never closes": ({5: '"some words'}, r"stray\.csv line 6: a quote opens a value here and "),
    # A later quote closes it: rows 6..899 would be one value of row 5.
    "closed later": (
        {5: '"some words', 900: 'she said "hi" twice'},
        r"stray\.csv line 6: the quoted value opened here closes on line 901 with text after",
    ),
    "text after the quote": ({7: '"best" film'}, r"stray\.csv line 8: .* \(' film'\)"),
}


@pytest.mark.parametrize("case", list(BROKEN_QUOTES))
def test_a_broken_quote_is_refused_naming_its_line_and_nothing_is_written(case, tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)
    stray, message = BROKEN_QUOTES[case]
    path = _rows_with_a_stray_quote(tmp_path / "stray.csv", stray)
    with project.connect() as con:
        for name in ("pool", "fresh"):  # replacing a dataset, or a new one
            with pytest.raises(InputError, match=message):
                datasets.import_file(con, name, path, id_column="id", replace=True)
    assert store_fingerprint(project) == before


def test_a_label_file_with_a_quote_that_never_closes_writes_no_label(tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)
    path = tmp_path / "labels.csv"
    path.write_text('id,label\nI1,yes\nI2,"no\nI3,yes\nI4,no\n', encoding="utf-8")
    with project.connect() as con, pytest.raises(InputError, match=r"labels\.csv line 3: a quote"):
        labels.import_labels(con, "pool", path, classes=["yes", "no"])
    assert store_fingerprint(project) == before


def test_quoted_values_keep_their_line_breaks_delimiters_and_quotes(con, tmp_path, monkeypatch):
    # Small blocks: many quoted line breaks fall where the Arrow reader cuts the file.
    monkeypatch.setattr(datasets, "CSV_BLOCK_BYTES", 4096)
    path = tmp_path / "multiline.csv"
    notes = [f'line one, of {i}\r\nline "two"\n' for i in range(2000)]
    quoted = ['"' + note.replace('"', '""') + '"' for note in notes]
    path.write_text(
        "id,note,n\n" + "".join(f"{i},{q},{i}\n" for i, q in enumerate(quoted)),
        encoding="utf-8",
        newline="",
    )
    info = datasets.import_file(con, "multi", path, id_column="id")
    stored = con.execute("SELECT note, n FROM dataset_multi ORDER BY n").fetchall()
    assert info.rows == 2000 and stored == [(note, i) for i, note in enumerate(notes)]


@pytest.mark.parametrize("header", ["id,score,note", '"id","score","note"'])
def test_a_utf8_bom_is_not_part_of_the_first_column_name(header, con, tmp_path):
    path = tmp_path / "excel.csv"  # Excel's "CSV UTF-8"
    path.write_bytes(b"\xef\xbb\xbf" + f"{header}\nI1,0.5,caf\u00e9\nI2,1.5,th\u00e9\n".encode())
    info = datasets.import_file(con, "pool", path, id_column="id")
    assert info.columns == ["id", "score", "note"]
    assert dict(datasets.dataset_schema(con, "pool"))["score"] == "DOUBLE"
    assert datasets.head(con, "pool")["item_id"].tolist() == ["I1", "I2"]
    labels_path = tmp_path / "labels.csv"
    labels_path.write_bytes(b"\xef\xbb\xbfid,label\nI2,yes\n")
    assert labels.import_labels(con, "pool", labels_path) == 1
    assert labels.current_labels(con, "pool").values.tolist() == [["I2", "yes"]]


def test_an_unknown_text_encoding_is_named(con, tmp_path):
    path = write_pool_csv(tmp_path / "p.csv", 5)
    with pytest.raises(InputError, match=r"unknown text encoding 'klingon'; pass --encoding"):
        datasets.import_file(con, "pool", path, encoding="klingon")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,a\n1,2\n2,3\n1,4\n", r"holds '1' more than once \(again on row 3\)"),
        ("id,a\n1,2\n,3\n", r"id column 'id' is empty on row 2"),
        ("x,a\n1,2\n", r"no id column 'id'; the columns are x, a"),
    ],
)
def test_bad_id_columns_name_the_value_and_row(content, message, tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)
    path = tmp_path / "ids.csv"
    path.write_text(content)
    with project.connect() as con, pytest.raises(InputError, match=message):
        datasets.import_file(con, "pool", path, id_column="id", replace=True)
    assert store_fingerprint(project) == before


def _write_queue(con, item_ids, name="q"):
    return queue.write_generation(
        con,
        queue=name,
        dataset="pool",
        item_ids=item_ids,
        scores=None,
        strategy="random",
        model_name=None,
        model_version=None,
        params={},
        pool_rows=60,
    )


def test_importing_over_an_existing_dataset_is_refused_unless_replace(tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)
    other = write_pool_csv(tmp_path / "other.csv", 20, seed=1)
    parquet = tmp_path / "other.parquet"
    pd.read_csv(other).to_parquet(parquet)
    refused = r"dataset 'pool' exists already \(60 rows\): pass --replace to replace it"
    with project.connect() as con:
        for path in (other, parquet):
            with pytest.raises(InputError, match=refused):
                datasets.import_file(con, "pool", path, id_column="id")
        with pytest.raises(InputError, match=refused):
            datasets.register_parquet(con, "pool", str(parquet), id_column="id")
    assert store_fingerprint(project) == before


@pytest.mark.parametrize("how", ["csv", "parquet", "in place"])
def test_replacing_a_dataset_says_which_labeled_and_queued_items_lost_their_row(how, tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)  # labels on I0, I6, ... I54
    frame = pd.read_csv(project.root / "pool.csv").head(30)  # I0..I29 stay
    frame.loc[frame["id"] == "I6", "age"] = 99.5  # I6 stays but is another row now
    path = tmp_path / ("new.csv" if how == "csv" else "new.parquet")
    frame.to_csv(path, index=False) if how == "csv" else frame.to_parquet(path)
    with project.connect() as con:
        _write_queue(con, ["I1", "I2", "I6", "I40"])
        _write_queue(con, ["I3", "I50", "I51"])  # the latest generation of queue q
        events = con.execute("SELECT * FROM label_events ORDER BY event_id").fetchall()
        if how == "in place":
            info = datasets.register_parquet(con, "pool", str(path), id_column="id", replace=True)
        else:
            info = datasets.import_file(con, "pool", path, id_column="id", replace=True)
        assert info.rows == datasets.count_rows(con, "pool") == 30
        report = info.replaced
        assert report.previous_rows == 60
        assert (report.labeled.total, report.labeled.gone, report.labeled.changed) == (10, 5, 1)
        assert (report.queued.total, report.queued.gone, report.queued.changed) == (3, 2, 0)
        # Nothing is deleted: the events and the items' state are as they were.
        assert con.execute("SELECT * FROM label_events ORDER BY event_id").fetchall() == events
        assert len(labels.current_labels(con, "pool")) == 10
    warnings = report.warnings(row_position_ids=False)
    assert warnings[:3] == [
        "5 of the 10 labeled items of dataset 'pool' are not in it any more",
        "1 of the 10 labeled items of dataset 'pool' hold other values than before",
        "2 of the 3 queued items of dataset 'pool' are not in it any more",
    ]


def test_a_replacement_that_fails_half_way_leaves_the_old_dataset(tmp_path, monkeypatch):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)

    def index_fails(con, name):
        raise InputError("disk full")  # after the old version was dropped and the new renamed

    monkeypatch.setattr(datasets, "_index_item_ids", index_fails)
    with project.connect() as con, pytest.raises(InputError, match="disk full"):
        datasets.import_file(
            con, "pool", write_pool_csv(tmp_path / "new.csv", 20), id_column="id", replace=True
        )
    assert store_fingerprint(project) == before


def test_labels_are_append_only_events_with_a_current_view(con, tmp_path):
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 20), id_column="id")
    labels.append_events(
        con,
        [
            labels.LabelEvent("pool", "I1", "labeled", "ann", label="yes"),
            labels.LabelEvent("pool", "I2", "labeled", "ann", label="no"),
            labels.LabelEvent("pool", "I1", "labeled", "bob", label="no"),  # relabel
            labels.LabelEvent("pool", "I2", "undone", "ann"),  # undo
            labels.LabelEvent("pool", "I3", "skipped", "ann"),
        ],
    )
    current = labels.current_labels(con, "pool")
    assert current.to_dict("records") == [{"item_id": "I1", "label": "no"}]
    assert con.execute("SELECT count(*) FROM label_events").fetchone()[0] == 5
    assert labels.labeled_item_ids(con, "pool") == {"I1"}


def test_label_import_and_export(con, tmp_path):
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 20), id_column="id")
    path = write_labels_csv(tmp_path / "l.csv", ["I3", "I4"], ["yes", "no"])
    assert labels.import_labels(con, "pool", path, classes=["yes", "no"]) == 2
    events = con.execute("SELECT annotator, status FROM label_events").fetchall()
    assert events == [("import", "labeled"), ("import", "labeled")]
    out = pd.read_csv(labels.export_labels(con, "pool", tmp_path / "out.csv"))
    assert out[["item_id", "label"]].values.tolist() == [["I3", "yes"], ["I4", "no"]]


def test_exports_keep_the_labelers_comments(con, tmp_path):
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 20), id_column="id")
    labels.append_events(
        con,
        [
            labels.LabelEvent("pool", "I1", "skipped", "ann", comment="blurry, ask Bob"),
            labels.LabelEvent("pool", "I1", "labeled", "bob", label="yes", comment="clear now"),
            labels.LabelEvent("pool", "I2", "labeled", "ann", label="no"),
        ],
    )
    out = pd.read_csv(labels.export_labels(con, "pool", tmp_path / "labels.csv"))
    assert list(out.columns) == list(labels.LABEL_EXPORT_COLUMNS)
    assert list(out.columns)[:5] == ["item_id", "label", "annotator", "labeled_at", "comment"]
    assert out[["item_id", "comment"]].fillna("").values.tolist() == [
        ["I1", "clear now"],
        ["I2", ""],
    ]
    events = pd.read_parquet(labels.export_events(con, "pool", tmp_path / "events.parquet"))
    assert events[["status", "review", "comment"]].fillna("").values.tolist() == [
        ["skipped", "", "blurry, ask Bob"],
        ["labeled", "", "clear now"],
        ["labeled", "", ""],
    ]


@pytest.mark.parametrize(
    ("ids", "values", "message"),
    [
        (["I3", "I999"], ["yes", "no"], r"row 2: id 'I999' is not an item of dataset 'pool'"),
        (["I3", "I4"], ["yes", "maybe"], r"row 2: label 'maybe' is not one of the project's"),
        (["I3", "I3"], ["yes", "no"], r"row 2: id 'I3' was already given a label above"),
    ],
)
def test_bad_labels_are_refused_and_nothing_is_written(ids, values, message, tmp_path):
    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    before = store_fingerprint(project)
    path = write_labels_csv(tmp_path / "bad.csv", ids, values)
    with project.connect() as con, pytest.raises(InputError, match=message):
        labels.import_labels(con, "pool", path, classes=["yes", "no"])
    assert store_fingerprint(project) == before


def test_queue_generations_are_appended_never_rewritten(con, tmp_path):
    first = queue.write_generation(
        con,
        queue="q",
        dataset="pool",
        item_ids=["a", "b"],
        scores=[0.9, 0.5],
        strategy="margin",
        model_name="m",
        model_version="1",
        params={},
        pool_rows=10,
    )
    second = queue.write_generation(
        con,
        queue="q",
        dataset="pool",
        item_ids=["c"],
        scores=None,
        strategy="kcenter",
        model_name="m",
        model_version="2",
        params={},
        pool_rows=9,
    )
    assert queue.latest_generation(con, "q") == second.generation_id > first.generation_id
    items = queue.generation_items(con, first.generation_id)
    assert items[["item_id", "rank"]].values.tolist() == [["a", 1], ["b", 2]]
    assert con.execute("SELECT count(*) FROM queue").fetchone()[0] == 3


def test_a_store_held_by_another_process_gives_a_clear_message(tmp_path):
    path = tmp_path / "store.duckdb"
    connect(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, duckdb
                con = duckdb.connect({str(path)!r})
                print("ready", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=rf"in use by process {holder.pid}"):
            connect(path)
    finally:
        holder.communicate("", timeout=30)


@pytest.fixture
def loose_umask():
    """The common umask 022, under which files are created readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_wal_are_private_whatever_the_umask(tmp_path, loose_umask):
    path = tmp_path / "store.duckdb"
    wal = tmp_path / "store.duckdb.wal"
    con = connect(path)
    try:
        con.execute("INSERT INTO users VALUES ('ann', 'admin', 'hash', current_timestamp)")
        assert _mode(path) == 0o600 and _mode(wal) == 0o600
    finally:
        con.close()
    assert os.umask(0o022) == 0o022  # given back
    (tmp_path / "later.txt").write_text("x")
    assert _mode(tmp_path / "later.txt") == 0o644


def test_an_existing_store_loses_group_and_other_access_when_opened(tmp_path, loose_umask):
    path = tmp_path / "store.duckdb"
    wal = tmp_path / "store.duckdb.wal"
    first = connect(path)
    try:
        assert wal.exists()
        os.chmod(path, 0o644)  # as a store made before this fix would be
        os.chmod(wal, 0o666)
        second = connect(path)  # the same database, opened again
        second.close()
        assert _mode(path) == 0o600 and _mode(wal) == 0o600
    finally:
        first.close()


def test_a_wal_made_again_after_a_checkpoint_is_private_under_private_files(tmp_path, loose_umask):
    from active_labeling.store.connection import private_files

    wal = tmp_path / "store.duckdb.wal"
    with private_files():
        con = connect(tmp_path / "store.duckdb")
        try:
            con.execute("CHECKPOINT")  # DuckDB deletes the WAL...
            assert not wal.exists()
            con.execute("CREATE TABLE t AS SELECT 1 AS a")  # ...and makes a new one
            assert _mode(wal) == 0o600
        finally:
            con.close()


def test_read_only_open_of_a_missing_store_says_init(tmp_path):
    with pytest.raises(InputError, match="active-labeling init"):
        connect(tmp_path / "none.duckdb", read_only=True)
    assert isinstance(duckdb.__version__, str)


def test_a_store_held_by_the_labeling_server_names_it(tmp_path):
    import json

    path = tmp_path / "store.duckdb"
    connect(path).close()
    (tmp_path / "serve.json").write_text(json.dumps({"pid": 4242, "url": "http://127.0.0.1:8000/"}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, duckdb; con = duckdb.connect({str(path)!r}); "
            "print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=r"owned by the labeling server .*8000"):
            connect(path)
    finally:
        holder.communicate("", timeout=30)


def test_the_quote_scan_agrees_with_the_csv_module_in_strict_mode():
    """Random texts of quotes, delimiters and line breaks: refused exactly when Python's
    csv reader (strict) refuses them, so the scan's rules are the standard ones."""
    import csv
    import io
    import random

    from active_labeling.store.csv_quotes import find_broken_quote

    rng = random.Random(0)
    pieces = ["a", "b", ",", '"', '""', "\n", "\r\n", " "]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 24)))
        try:
            list(csv.reader(io.StringIO(text, newline=""), strict=True))
            valid = True
        except csv.Error:
            valid = False
        lines = io.StringIO(text, newline="").readlines()
        assert (find_broken_quote(lines, ",") is None) == valid, repr(text)
