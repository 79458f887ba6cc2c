"""The ``active-labeling`` command: projects, datasets, labels, recipes, models, queues.

Errors print as one line and exit with status 1; ``--debug`` shows the traceback instead.
Every file a command creates is readable by its owner only (the store holds password
hashes; see ``private_files``).

Importing this module and building the parser must stay light (``--help`` and
``strategies`` answer at once): the handlers import what they need, scikit-learn,
pandas, matplotlib, DuckDB or FastAPI, when they run (``tests/test_cli.py`` checks it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from active_labeling import __version__
from active_labeling.errors import ActiveLabelingError

#: Commands that never go to a running server: they do not use the store, or they are it.
LOCAL_COMMANDS = frozenset({"init", "serve", "strategies", "experiment"})

# --- commands ------------------------------------------------------------------------------


def _project(args):
    from active_labeling.flow.project import Project

    return Project.open(args.project)


def cmd_init(args) -> int:
    from active_labeling.flow.project import Project

    settings = {"label_column": args.label_column}
    if args.name:
        settings["name"] = args.name
    if args.classes:
        settings["classes"] = _split(args.classes)
    if args.id_column:
        settings["id_column"] = args.id_column
    if args.feature_columns:
        settings["feature_columns"] = _split(args.feature_columns)
    if args.text_columns:
        settings["text_columns"] = _split(args.text_columns)
    if args.multi_label:
        settings["multi_label"] = True
    if args.task:
        settings["task"] = args.task
    if args.text_column:
        settings["text_column"] = args.text_column
    if args.media_column:
        settings["media_column"] = args.media_column
    project = Project.init(args.project, **settings)
    print(f"created project {project.settings.name!r} in {project.root}")
    print(f"next: active-labeling dataset import {args.project} NAME FILE")
    return 0


def cmd_dataset_import(args) -> int:
    from active_labeling.store import datasets

    project = _project(args)
    id_column = args.id_column or project.settings.id_column
    previous = project.config.datasets.get(args.name)
    if id_column is None and args.replace and previous is not None:
        id_column = previous.id_column  # the ids the labels and queues point at
    with project.connect() as con:
        if args.in_place:
            info = datasets.register_parquet(
                con, args.name, args.file, id_column=id_column, replace=args.replace
            )
        else:
            with _bar(f"importing {Path(args.file).name}") as bar:
                info = datasets.import_file(
                    con,
                    args.name,
                    args.file,
                    id_column=id_column,
                    encoding=args.encoding,
                    progress=bar.update,
                    replace=args.replace,
                )
    project.record_dataset(info)
    how = "registered in place" if info.kind == "parquet" else "imported"
    if info.replaced is not None:
        how = f"replaced ({'in place' if info.kind == 'parquet' else 'copied'})"
    ids = f"ids from {info.id_column!r}" if info.id_column else "ids = row positions"
    was = f" (was {info.replaced.previous_rows})" if info.replaced is not None else ""
    print(f"dataset {info.name!r} {how}: {info.rows} rows{was}, {len(info.columns)} columns, {ids}")
    if info.replaced is not None:
        for line in info.replaced.warnings(row_position_ids=info.id_column is None):
            print(f"warning: {line}", file=sys.stderr)
    return 0


def cmd_dataset_import_folder(args) -> int:
    from active_labeling.errors import InputError
    from active_labeling.store.media import import_folder

    project = _project(args)
    previous = project.config.datasets.get(args.name)
    if args.replace and previous is not None and previous.kind != "folder":
        raise InputError(
            f"dataset {args.name!r} was not imported from a folder: replace it with "
            "`dataset import --replace`, or import the folder under another name"
        )
    with project.connect() as con:
        with _bar(f"reading {args.folder}") as bar:
            info = import_folder(
                con,
                args.name,
                args.folder,
                project.root / "media",
                replace=args.replace,
                skip_bad=args.skip_bad,
                task=args.task,
                progress=bar.update,
            )
    project.record_dataset(info)
    how = "replaced" if info.replaced is not None else "imported"
    task = project.task_of(info.name)
    print(
        f"dataset {info.name!r} {how} from a folder: {info.images} images, {info.sounds} "
        f"sounds, copied to {project.root / 'media' / info.name}; ids = paths in the folder; "
        f"task {task}"
    )
    if info.ignored:
        print(f"left out {info.ignored} hidden file(s) or file(s) of other types")
    for relative, why in info.skipped:
        print(f"skipped {relative}: {why}", file=sys.stderr)
    return 0


def cmd_dataset_list(args) -> int:
    project = _project(args)
    if not project.config.datasets:
        print("no dataset yet")
    for name, entry in project.config.datasets.items():
        print(f"{name}\t{entry.kind}\t{entry.rows} rows\t{entry.source}")
    return 0


def cmd_dataset_show(args) -> int:
    import pandas as pd

    from active_labeling.store import datasets

    project = _project(args)
    with project.connect(read_only=True) as con:
        schema = datasets.dataset_schema(con, args.name)
        rows = datasets.count_rows(con, args.name)
        head = datasets.head(con, args.name, args.rows)
    print(f"dataset {args.name!r}: {rows} rows")
    for column, sql_type in schema:
        print(f"  {column}: {sql_type}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(head.to_string(index=False, max_colwidth=40))
    return 0


def cmd_dataset_export(args) -> int:
    from active_labeling.store import datasets

    project = _project(args)
    with project.connect(read_only=True) as con:
        path = datasets.export_dataset(con, args.name, args.file)
    print(f"wrote {path}")
    return 0


def cmd_labels_import(args) -> int:
    from active_labeling.store import labels

    project = _project(args)
    dataset = args.dataset or project.default_dataset()
    entry = project.config.datasets.get(dataset)
    note = ""
    if entry is not None and entry.id_column is None:  # the usual surprise: say it
        note = (
            " (it was imported without an id column, so its ids are row positions 1, 2, "
            "...; import it again with --replace --id-column COLUMN to keep your ids)"
        )
    with project.connect() as con:
        from active_labeling.labeling.annotations import import_check

        n = labels.import_labels(
            con,
            dataset,
            args.file,
            id_column=args.id_column or project.settings.id_column or "id",
            label_column=args.label_column or project.settings.label_column,
            classes=project.settings.classes or None,
            encoding=args.encoding,
            ids_note=note,
            multi_label=project.settings.multi_label,
            allow_empty=project.settings.allow_empty,
            annotations=import_check(con, project, dataset),  # spans, boxes: JSON lists
        )
    skipped = getattr(n, "skipped", 0)
    extra = f" ({skipped} disputed items of the export left out: no label yet)" if skipped else ""
    print(f"imported {n} labels into dataset {dataset!r}{extra}")
    return 0


def cmd_labels_export(args) -> int:
    from active_labeling.store import labels
    from active_labeling.store.consensus import ConsensusRule

    project = _project(args)
    dataset = args.dataset or project.default_dataset()
    if args.format and args.events:
        from active_labeling.errors import InputError

        raise InputError("--events writes the event log as .csv or .parquet: drop --format")
    if args.format:
        from active_labeling.exports import export_labels_as

        with project.connect(read_only=True) as con:
            result = export_labels_as(con, project, dataset, args.format, Path(args.file))
        what = f", {result.annotations} annotations" if result.annotations is not None else ""
        print(f"wrote {result.path} ({result.format}: {result.items} labeled items{what})")
        return 0
    with project.connect(read_only=True) as con:
        if args.events:
            path = labels.export_events(con, dataset, args.file)
        else:
            rule = ConsensusRule.for_dataset(project, dataset)
            path = labels.export_labels(con, dataset, args.file, rule)
    print(f"wrote {path}")
    return 0


def cmd_recipe_add(args) -> int:
    from active_labeling.flow.descriptors import recipe_descriptor
    from active_labeling.flow.recipes import add_recipe, parse_bindings, parse_params

    project = _project(args)
    entry = add_recipe(
        project,
        args.type,
        args.name,
        inputs=parse_bindings(args.input, "input"),
        outputs=parse_bindings(args.output, "output"),
        params=parse_params(recipe_descriptor(args.type), args.param),
    )
    print(f"recipe {args.name!r} ({entry.type}) added to {project.config_path}")
    print(f"next: active-labeling run {args.project} {args.name}")
    return 0


def cmd_recipe_list(args) -> int:
    project = _project(args)
    if not project.config.recipes:
        print("no recipe yet")
    for name, entry in project.config.recipes.items():
        ins = ", ".join(f"{r}={'+'.join(n)}" for r, n in entry.inputs.items())
        outs = ", ".join(f"{r}={'+'.join(n)}" for r, n in entry.outputs.items())
        print(f"{name}\t{entry.type}\t{ins} -> {outs}")
    return 0


def cmd_run(args) -> int:
    from active_labeling.flow.recipes import run_recipe

    run_recipe(_project(args), args.name, progress=not args.quiet)
    return 0


def cmd_models_list(args) -> int:
    from active_labeling.models import list_models

    project = _project(args)
    models = list_models(project.models_dir)
    if not models:
        print("no saved model yet")
    for name, versions in models.items():
        print(f"{name}\tversions {', '.join(versions)}")
    return 0


def _shown_queue(project, con, asked: str | None) -> str:
    """The queue ``queue show`` shows: the one asked for, else the project's only one.

    A queue with no generation is an error (exit 1), naming the recipe that writes it.
    """
    from active_labeling.errors import InputError
    from active_labeling.store import queue

    stored = queue.queue_names(con)
    if asked in stored:
        return asked
    if asked is None and len(stored) == 1:
        return stored[0]
    if asked is None and stored:
        raise InputError(
            f"the project has several queues ({', '.join(stored)}): pick one with --queue"
        )
    writers = {  # queue -> the query-sampler recipe that writes it
        name: recipe
        for recipe, entry in project.config.recipes.items()
        if entry.type == "query-sampler"
        for name in entry.outputs.get("queue", [])
    }
    unwritten = asked if asked is not None else next(iter(writers), None)
    if unwritten in writers:
        run = f"active-labeling run {project.root} {writers[unwritten]}"
        raise InputError(f"queue {unwritten!r} has no generation yet: run its recipe (`{run}`)")
    if asked is None:
        raise InputError("no queue yet: add a query-sampler recipe and run it")
    raise InputError(
        f"no queue {asked!r} in this project (queues: {', '.join(stored) or 'none yet'})"
    )


def cmd_queue_show(args) -> int:
    import pandas as pd

    from active_labeling.store import datasets, queue

    project = _project(args)
    with project.connect(read_only=True) as con:
        args.queue = _shown_queue(project, con, args.queue)
        generation = queue.latest_generation(con, args.queue)
        items = queue.generation_items(con, generation).head(args.top)
        dataset = con.execute(
            "SELECT dataset FROM queue_generations WHERE generation_id = ?", [generation]
        ).fetchone()[0]
        rows = con.execute(
            f"SELECT * FROM {datasets.table_of(dataset)} WHERE item_id IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [items["item_id"].tolist()],
        ).df()
    shown = items[["rank", "item_id", "score"]].merge(rows, on="item_id", how="left")
    print(f"queue {args.queue!r}, generation {generation} (dataset {dataset!r}), top {len(items)}:")
    with pd.option_context("display.width", 140, "display.max_columns", 12):
        print(shown.to_string(index=False, max_colwidth=30))
    return 0


def cmd_user_add(args) -> int:
    from active_labeling.errors import InputError
    from active_labeling.labeling.auth import add_user, user_exists

    project = _project(args)
    with project.connect() as con:
        if user_exists(con, args.name):
            raise InputError(
                f"user {args.name!r} exists already: `active-labeling user set-password "
                f"{args.project} {args.name}` gives it a new password, `user set-role` "
                "another role"
            )
        password = add_user(con, args.name, args.role)
    print(f"user {args.name!r} ({args.role}) added; password, shown this once:")
    print(password)
    return 0


def cmd_user_list(args) -> int:
    from active_labeling.labeling.auth import list_users

    project = _project(args)
    with project.connect(read_only=True) as con:
        users = list_users(con)
    if not users:
        print(f"no user yet: active-labeling user add {args.project} NAME --role admin")
    for user in users:
        print(
            f"{user['name']}\t{user['role']}\tadded {user['created_at']:%Y-%m-%d %H:%M}\t"
            f"{user['sessions']} browser session(s)\t{user['tokens']} API token(s)"
        )
    return 0


def cmd_user_set_password(args) -> int:
    from active_labeling.labeling.auth import set_password

    project = _project(args)
    with project.connect() as con:
        password = set_password(con, args.name)
    print(f"new password of {args.name!r}, shown this once (its browser sessions are ended;")
    print(f"its API tokens stay: `active-labeling token revoke {args.project} --user NAME`):")
    print(password)
    return 0


def cmd_user_set_role(args) -> int:
    from active_labeling.labeling.auth import set_role

    project = _project(args)
    with project.connect() as con:
        set_role(con, args.name, args.role)
    print(f"user {args.name!r} is now {args.role}")
    return 0


def cmd_user_remove(args) -> int:
    from active_labeling.labeling.auth import remove_user

    project = _project(args)
    with project.connect() as con:
        sessions, tokens = remove_user(con, args.name)
    print(
        f"user {args.name!r} removed: {sessions} browser session(s) ended, {tokens} API "
        "token(s) revoked; their label events keep their name"
    )
    return 0


def cmd_token_create(args) -> int:
    from active_labeling.labeling.auth import create_token, token_id

    project = _project(args)
    with project.connect() as con:
        token = create_token(con, args.name)
    print(
        f"API token {token_id(token)} for {args.name!r}, shown this once (send it as "
        "'Authorization: Bearer ...'):"
    )
    print(token)
    return 0


def cmd_token_list(args) -> int:
    from active_labeling.labeling.auth import list_tokens

    project = _project(args)
    with project.connect(read_only=True) as con:
        tokens = list_tokens(con, args.user)
    if not tokens:
        print("no API token")
    for token in tokens:
        print(f"{token['id']}\t{token['name']}\tcreated {token['created_at']:%Y-%m-%d %H:%M}")
    return 0


def cmd_token_revoke(args) -> int:
    from active_labeling.errors import InputError
    from active_labeling.labeling.auth import revoke_tokens

    if (args.token is None) == (args.user is None):
        raise InputError("give a token id (from `token list`) or the token, or --user NAME")
    project = _project(args)
    with project.connect() as con:
        revoked = revoke_tokens(con, token=args.token, name=args.user)
    whose = f" of {args.user!r}" if args.user else ""
    print(f"{revoked} API token(s){whose} revoked")
    return 0


def cmd_guide_show(args) -> int:
    from active_labeling.labeling.guide import read_guide

    project = _project(args)
    with project.connect(read_only=True) as con:
        guide = read_guide(con)
    if not guide.task and not guide.classes:
        print(f"no guide yet: active-labeling guide set {args.project} --task TEXT")
        return 0
    print(f"task: {guide.task or '(none)'}")
    for label in project.settings.classes:
        print(f"  {label}: {guide.classes.get(label, '(no guidance)')}")
    print(f"set by {guide.updated_by} at {guide.updated_at}")
    return 0


def cmd_guide_set(args) -> int:
    from active_labeling.errors import InputError
    from active_labeling.labeling.guide import read_guide, write_guide

    project = _project(args)
    if args.task is not None and args.task_file is not None:
        raise InputError("give --task or --task-file, not both")
    task = args.task
    if args.task_file is not None:
        try:
            task = Path(args.task_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{args.task_file}: cannot read the task: {exc}") from None
    changes = {}
    for pair in args.guidance:
        label, sep, text = pair.partition("=")
        if not sep:
            raise InputError(f"--class {pair!r}: expected CLASS=TEXT")
        changes[label.strip()] = text
    with project.connect() as con:
        current = read_guide(con) if not args.clear else None
        guidance = {**(current.classes if current else {}), **changes}
        guide = write_guide(
            con,
            task if task is not None else (current.task if current else ""),
            guidance,
            classes=list(project.settings.classes),
            author="cli",
        )
    print(
        f"guide of {project.settings.name!r}: task of {len(guide.task)} characters, guidance "
        f"for {len(guide.classes)} of {len(project.settings.classes)} classes; the labeling "
        "page shows it at its next load"
    )
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args) -> int:
    import uvicorn

    from active_labeling.labeling.app import create_app, settle_heap

    tls = bool(args.tls_certfile and args.tls_keyfile)
    if not _is_loopback(args.host) and not (tls or args.behind_proxy):
        print(
            f"warning: serving on {args.host} without TLS: passwords and session cookies "
            "cross the network in clear; use --tls-certfile/--tls-keyfile, or a TLS proxy "
            "(then pass --behind-proxy)",
            file=sys.stderr,
        )
    from active_labeling.labeling.forwarding import new_cli_token, server_lock, write_server_file

    cli_token = new_cli_token()
    app = create_app(
        args.project,
        cli_token=cli_token,
        scheduler=not args.no_scenarios,
        scheduler_poll_seconds=args.scenario_poll_seconds,
        dataset=args.dataset,
        queue=args.queue,
        lease_minutes=args.lease_minutes,
        secure_cookies=tls or args.behind_proxy,
        media_column=args.media_column,
        columns=_split(args.columns) if args.columns else None,
    )
    scheme = "https" if tls else "http"
    url = f"{scheme}://{args.host}:{args.port}/"
    print(f"labeling app of {args.project} on {url} (Ctrl-C stops)", flush=True)
    # Other commands on this project find the server here and send their work to it; the
    # lock tells them the server still runs.
    with server_lock(Path(args.project)):
        marker = write_server_file(Path(args.project), url, cli_token)
        app.state.server_file = marker
        settle_heap()
        try:
            uvicorn.run(
                app,
                host=args.host,
                port=args.port,
                log_level="warning",
                ssl_certfile=args.tls_certfile,
                ssl_keyfile=args.tls_keyfile,
                proxy_headers=args.behind_proxy,
            )
        finally:
            marker.unlink(missing_ok=True)
    return 0


def cmd_strategies(args) -> int:
    from active_labeling.strategy_list import RECIPE_ONLY, STRATEGY_SUMMARIES

    for name, summary in {**STRATEGY_SUMMARIES, **RECIPE_ONLY}.items():
        print(f"{name:<18}{summary}")
    return 0


# --- wiring --------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _bar(description: str):
    from tqdm import tqdm

    return tqdm(desc=description, unit="row", unit_scale=True, file=sys.stderr, leave=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="active-labeling",
        description="ML-assisted labeling with active learning.",
    )
    parser.add_argument("--version", action="version", version=f"active-labeling {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent, name, handler, help_text):
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    init = command(commands, "init", cmd_init, "create a project: project.toml and store.duckdb")
    init.add_argument("project", help="project folder (created if missing)")
    init.add_argument("--name", help="project name (default: the folder's name)")
    init.add_argument("--label-column", default="label", help="name of the label column")
    init.add_argument("--classes", help="comma-separated classes, if known up front")
    init.add_argument("--id-column", help="default id column of imported datasets")
    init.add_argument("--feature-columns", help="comma-separated feature columns")
    init.add_argument("--text-columns", help="comma-separated free-text columns")
    init.add_argument("--multi-label", action="store_true", help="several classes per item")
    init.add_argument(
        "--task",
        choices=["classification", "spans", "boxes", "audio"],
        help="what labelers do: pick a class (default), mark text spans, draw boxes on "
        "images, or listen and pick a class",
    )
    init.add_argument("--text-column", help="spans: the column of the text labeled")
    init.add_argument("--media-column", help="boxes, audio: the column of file paths under media/")

    dataset = commands.add_parser("dataset", help="import, list, show and export datasets")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    imp = command(dataset_commands, "import", cmd_dataset_import, "import a CSV or Parquet file")
    imp.add_argument("project")
    imp.add_argument("name", help="dataset name")
    imp.add_argument("file", help="a .csv/.tsv or .parquet file (a glob with --in-place)")
    imp.add_argument("--id-column", help="column of unique ids (default: row positions)")
    imp.add_argument(
        "--encoding", default="utf-8", help="text encoding of a CSV file (default: %(default)s)"
    )
    imp.add_argument(
        "--in-place", action="store_true", help="read Parquet files where they are, no copy"
    )
    imp.add_argument(
        "--replace",
        action="store_true",
        help="replace the dataset of that name; says how many labeled or queued items lost "
        "their row",
    )
    folder = command(
        dataset_commands,
        "import-folder",
        cmd_dataset_import_folder,
        "import a folder of images or sounds (copied under media/NAME; ids are the paths)",
    )
    folder.add_argument("project")
    folder.add_argument("name", help="dataset name")
    folder.add_argument("folder", help="the folder, walked recursively")
    folder.add_argument(
        "--task",
        choices=["classification", "boxes", "audio"],
        help="the dataset's task (default: audio for a folder of sounds, else the project's)",
    )
    folder.add_argument(
        "--skip-bad",
        action="store_true",
        help="import the files that decode and list the others (default: refuse the folder)",
    )
    folder.add_argument(
        "--replace", action="store_true", help="replace the dataset of that name and its files"
    )
    lst = command(dataset_commands, "list", cmd_dataset_list, "list the project's datasets")
    lst.add_argument("project")
    show = command(dataset_commands, "show", cmd_dataset_show, "schema, row count and a few rows")
    show.add_argument("project")
    show.add_argument("name")
    show.add_argument("--rows", type=int, default=5, help="rows shown (default: %(default)s)")
    exp = command(dataset_commands, "export", cmd_dataset_export, "write to .parquet, .csv or .tsv")
    exp.add_argument("project")
    exp.add_argument("name")
    exp.add_argument("file")

    labels = commands.add_parser("labels", help="import and export labels")
    label_commands = labels.add_subparsers(dest="labels_command", required=True)
    limp = command(
        label_commands,
        "import",
        cmd_labels_import,
        "load existing labels: a file with the dataset's ids and a label per row",
    )
    limp.add_argument("project")
    limp.add_argument("file", help="a .csv/.tsv or .parquet file")
    limp.add_argument("--dataset", help="the labeled dataset (default: the only one)")
    limp.add_argument(
        "--id-column",
        help="the file's id column (default: the project's id column, from init --id-column, "
        "else 'id')",
    )
    limp.add_argument(
        "--label-column", help="the file's label column (default: the project's, 'label')"
    )
    limp.add_argument(
        "--encoding", default="utf-8", help="text encoding of a CSV file (default: %(default)s)"
    )
    lexp = command(
        label_commands,
        "export",
        cmd_labels_export,
        "write each item's label (a reviewer's decision, else the labelers' consensus, else "
        "its one label), with the consensus, its confidence, the raw labels and the review",
    )
    lexp.add_argument("project")
    lexp.add_argument("file", help="a .parquet, .csv or .tsv file")
    lexp.add_argument(
        "--events",
        action="store_true",
        help="every label event instead: skips, undos, relabels and reviewers' decisions, with "
        "their comments",
    )
    lexp.add_argument("--dataset", help="the labeled dataset (default: the only one)")
    lexp.add_argument(
        "--format",
        choices=["csv", "parquet", "coco", "yolo", "voc", "conll", "spacy-jsonl", "label-studio"],
        help="the format (default: by the file's suffix, .csv or .parquet): coco, yolo and "
        "voc for boxes (yolo and voc write a folder), conll and spacy-jsonl for spans, "
        "label-studio for every task",
    )

    recipe = commands.add_parser("recipe", help="declare recipes in project.toml")
    recipe_commands = recipe.add_subparsers(dest="recipe_command", required=True)
    add = command(recipe_commands, "add", cmd_recipe_add, "validate and declare a recipe")
    add.add_argument("project")
    add.add_argument("type", help="recipe type: train-model, query-sampler")
    add.add_argument("name", help="recipe name")
    add.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help="an input role bound to a dataset or a model (repeat for each)",
    )
    add.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help="an output role bound to a name (repeat for each)",
    )
    add.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the recipe (repeat for each; the others keep their defaults)",
    )
    rlist = command(recipe_commands, "list", cmd_recipe_list, "list the declared recipes")
    rlist.add_argument("project")

    run = command(commands, "run", cmd_run, "run a declared recipe")
    run.add_argument("project")
    run.add_argument("name")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    models = commands.add_parser("models", help="saved models")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    mlist = command(model_commands, "list", cmd_models_list, "list saved models and versions")
    mlist.add_argument("project")

    queue = commands.add_parser("queue", help="queues written by the query sampler")
    queue_commands = queue.add_subparsers(dest="queue_command", required=True)
    qshow = command(
        queue_commands, "show", cmd_queue_show, "the top of a queue's latest generation"
    )
    qshow.add_argument("project")
    qshow.add_argument("--queue", help="the queue to show (default: the project's only one)")
    qshow.add_argument(
        "--top", type=int, default=10, help="items shown, best first (default: %(default)s)"
    )

    serve = command(commands, "serve", cmd_serve, "run the labeling web app (owns the store)")
    serve.add_argument("project")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for "
        "every interface, with TLS)",
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--dataset", help="the dataset to label (default: the queue's)")
    serve.add_argument("--queue", help="the queue to hand out (default: the latest)")
    serve.add_argument(
        "--lease-minutes",
        type=float,
        default=10.0,
        help="how long an item handed out stays with its labeler without a heartbeat, in "
        "minutes (default: %(default)s)",
    )
    serve.add_argument(
        "--media-column", help="a column of image paths under the project's media/ folder"
    )
    serve.add_argument(
        "--columns",
        help="comma-separated columns an item card shows, in this order (default: the "
        "feature columns, else every column)",
    )
    serve.add_argument(
        "--no-scenarios", action="store_true", help="do not run the project's scenarios"
    )
    serve.add_argument(
        "--scenario-poll-seconds",
        type=float,
        default=10.0,
        help="seconds between two looks at the scenarios' triggers (default: %(default)s)",
    )
    serve.add_argument("--tls-certfile", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--tls-keyfile", help="and this private key (PEM)")
    serve.add_argument(
        "--behind-proxy", action="store_true", help="a TLS proxy stands in front of the app"
    )

    roles = ["labeler", "reviewer", "admin"]
    user = commands.add_parser("user", help="users of the labeling app")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    uadd = command(user_commands, "add", cmd_user_add, "add a user; prints its password once")
    uadd.add_argument("project")
    uadd.add_argument("name")
    uadd.add_argument("--role", choices=roles, default="labeler", help="(default: labeler)")
    ulist = command(user_commands, "list", cmd_user_list, "the users, their roles and access")
    ulist.add_argument("project")
    upass = command(
        user_commands,
        "set-password",
        cmd_user_set_password,
        "a new password for a user, printed once; ends its browser sessions",
    )
    upass.add_argument("project")
    upass.add_argument("name")
    urole = command(user_commands, "set-role", cmd_user_set_role, "change a user's role")
    urole.add_argument("project")
    urole.add_argument("name")
    urole.add_argument("role", choices=roles)
    uremove = command(
        user_commands,
        "remove",
        cmd_user_remove,
        "remove a user: ends its sessions, revokes its tokens; its labels stay",
    )
    uremove.add_argument("project")
    uremove.add_argument("name")

    guide = commands.add_parser("guide", help="the task and the guidance per class labelers see")
    guide_commands = guide.add_subparsers(dest="guide_command", required=True)
    gshow = command(guide_commands, "show", cmd_guide_show, "the task and the class guidance")
    gshow.add_argument("project")
    gset = command(
        guide_commands,
        "set",
        cmd_guide_set,
        "set the task description and the guidance per class (shown as text)",
    )
    gset.add_argument("project")
    gset.add_argument("--task", help="what the labelers label, and how (replaces the task)")
    gset.add_argument("--task-file", help="the task from a UTF-8 text file")
    gset.add_argument(
        "--class",
        dest="guidance",
        action="append",
        default=[],
        metavar="CLASS=TEXT",
        help="guidance for one class (repeat for each; an empty TEXT removes it)",
    )
    gset.add_argument(
        "--clear", action="store_true", help="start from an empty guide, not the current one"
    )

    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    tcreate = command(token_commands, "create", cmd_token_create, "a new API token for a user")
    tcreate.add_argument("project")
    tcreate.add_argument("name")
    tlist = command(token_commands, "list", cmd_token_list, "the API tokens: id, user, date")
    tlist.add_argument("project")
    tlist.add_argument("--user", help="only this user's tokens")
    trevoke = command(
        token_commands, "revoke", cmd_token_revoke, "revoke a token, or every token of a user"
    )
    trevoke.add_argument("project")
    trevoke.add_argument(
        "token", nargs="?", help="the token's id (from `token list`) or the token itself"
    )
    trevoke.add_argument("--user", help="revoke every token of this user instead")

    command(commands, "strategies", cmd_strategies, "list the query strategies")
    from active_labeling.experiment.commands import register as register_experiment

    register_experiment(commands)
    from active_labeling.flow.scenario_commands import register as register_scenarios

    register_scenarios(commands)
    return parser


def _forwarded(argv: list[str], args) -> int | None:
    """Send the command to the server that owns the project's store, if one runs."""
    project = getattr(args, "project", None)
    if args.command in LOCAL_COMMANDS or not isinstance(project, str):
        return None
    from active_labeling.labeling.forwarding import forward, running_server

    server = running_server(Path(project), notice=lambda text: print(text, file=sys.stderr))
    if server is None:
        return None
    code, _, _ = forward(argv, server, out=sys.stdout, err=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    from active_labeling.private_files import private_files

    try:
        forwarded = _forwarded(argv, args)
        if forwarded is not None:
            return forwarded
        # The store's WAL comes and goes with DuckDB's checkpoints, each time made with the
        # umask: the whole command (the server's whole life) runs with a private one.
        with private_files():
            return args.handler(args)
    except ActiveLabelingError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
