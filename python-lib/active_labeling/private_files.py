"""A private umask: files created meanwhile are readable and writable by their owner only.

Beside the store (which holds password hashes) rather than in it: the ``active-labeling``
command enters it for every command, and must not import DuckDB to do so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def private_files() -> Iterator[None]:
    """Files created in this block are readable and writable by their owner only.

    DuckDB creates the store and, at every write after a checkpoint, its ``.wal`` with the
    process's umask; this is the one way to have them private from their first byte. The
    umask is process-wide: other threads' new files are private too meanwhile (never less).
    """
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)
