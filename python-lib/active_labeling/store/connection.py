"""Opening the project store: one DuckDB file, one writing process at a time.

DuckDB lets a single process open a file for writing. When another process holds it, the
error here says so plainly, so the user can stop that process or go through its server.

The store holds password hashes, so it and its write-ahead log are readable by their owner
only (0600), whatever the umask: a new store is created under a private umask, and an
existing one loses group and other access when it is opened.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from active_labeling.errors import InputError, StoreLockedError
from active_labeling.private_files import private_files
from active_labeling.store import item_state
from active_labeling.store.schema import DDL, SCHEMA_VERSION

#: Written beside the store by ``active-labeling serve`` while it runs.
SERVER_FILE = "serve.json"


def _locked_message(path: Path, exc: Exception) -> str:
    pid = re.search(r"PID (\d+)", str(exc))
    holder = f"process {pid.group(1)}" if pid else "another process"
    server = path.with_name(SERVER_FILE)
    if server.is_file():
        try:
            info = json.loads(server.read_text())
            return (
                f"the store {path} is owned by the labeling server (process {info['pid']}, "
                f"{info['url']}); stop it to use this command, or use its HTTP API"
            )
        except (ValueError, KeyError, OSError):
            pass
    return (
        f"the store {path} is in use by {holder}; stop it, or run this command through the "
        "running server (`active-labeling serve` owns the store while it runs)"
    )


def _make_private(path: Path) -> None:
    """Take group and other access away from the store and its WAL (if we own them)."""
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                os.chmod(file, mode & 0o700)
        except (FileNotFoundError, PermissionError):
            pass  # no WAL, or someone else's store opened read-only


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store at ``path``, creating its tables if needed (unless read-only)."""
    path = Path(path)
    if read_only and not path.exists():
        raise InputError(f"no store at {path}: run `active-labeling init` first")
    _make_private(path)
    with private_files():
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(_locked_message(path, exc)) from None
            raise InputError(f"cannot open the store {path}: {exc}") from None
        con.execute("SET preserve_insertion_order = true")
        if not read_only:
            _migrate(con)
    return con


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing; bring a store of an older schema up to date, in one go."""
    con.execute(DDL[0])  # store_meta
    row = con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
    stored = int(row[0]) if row else SCHEMA_VERSION
    if stored > SCHEMA_VERSION:
        raise InputError(
            f"the store was written by a newer active-labeling (schema {stored}, this one "
            f"reads {SCHEMA_VERSION}); upgrade active-labeling"
        )
    with transaction(con):
        for statement in DDL:
            con.execute(statement)
        if stored < 2:  # item_state appeared in schema 2
            item_state.rebuild(con)
        con.execute(
            "INSERT OR REPLACE INTO store_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run a block in one transaction: all of it is committed, or none of it."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def quote_identifier(name: str) -> str:
    """A SQL identifier, quoted so that any column name is safe."""
    return '"' + name.replace('"', '""') + '"'
