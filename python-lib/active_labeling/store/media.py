"""Folders of images and sounds as datasets: one row per file, the files copied under media/.

``import_folder`` walks a folder, decodes every image and reads every sound's length, then
copies the files to ``<project>/media/<NAME>/`` (the only folder the labeling app serves
files from, behind its login) and writes dataset ``NAME``: ``item_id`` is the file's path
relative to the folder (``/``-separated), so importing the same folder again gives the
same ids; then ``path`` (the file under ``media/``, as the app's media column wants it),
``file_type`` (image or audio), ``format``, ``size_bytes``, ``width`` and ``height``
(images) and ``duration_s`` (sounds).

Nothing is stored half: a file that does not decode stops the import naming it (or, when
asked, is left out and listed), and the copy is built beside the old one and swapped in
with the table, in one transaction. A file or link that resolves outside the folder is
refused: the app must never serve what the folder did not hold. Hidden files (a leading
dot) and files of other types are left out and counted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from active_labeling.errors import InputError
from active_labeling.store.connection import transaction
from active_labeling.store.datasets import (
    _check_replaceable,
    _install,
    check_dataset_name,
)
from active_labeling.store.replacement import Replacement

#: Suffixes read as images (decoded with Pillow) and as sounds (read with mutagen).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a"})
#: The columns of a folder dataset after ``item_id``.
FOLDER_COLUMNS = ["path", "file_type", "format", "size_bytes", "width", "height", "duration_s"]
#: Files named at most in an error message; the count says how many more.
_SHOWN = 5


@dataclass(frozen=True)
class MediaFile:
    """One file of the folder, decoded."""

    relative: str
    file_type: str  # "image" or "audio"
    format: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class FolderScan:
    files: list[MediaFile]
    #: (relative path, why) of the files that are refused: not decodable, outside the folder.
    refused: list[tuple[str, str]]
    #: Relative paths of the files left out: hidden, or of another type.
    ignored: list[str]


@dataclass(frozen=True)
class FolderImport:
    """What ``import_folder`` produced (the fields of ``store.datasets.DatasetInfo``, and
    what a folder adds)."""

    name: str
    rows: int
    columns: list[str]
    id_column: str | None
    kind: str
    source: str
    replaced: Replacement | None = None
    task: str | None = None
    images: int = 0
    sounds: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0


# --- reading files ---------------------------------------------------------------------------


def probe_image(path: Path) -> tuple[str, int, int]:
    """(format, width, height) of an image, decoded to be sure it is one; InputError else.

    A JPEG is decoded at an eighth of its size (``draft``): enough to find a broken file,
    eight times faster than a full decode.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            fmt = (image.format or path.suffix.lstrip(".")).lower()
            width, height = image.size
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
    except Image.DecompressionBombError:
        raise InputError(
            "too many pixels to be an image one labels (a decompression bomb?)"
        ) from None
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError... on bad data
        raise InputError(f"not an image Pillow can decode ({type(exc).__name__}: {exc})") from None
    if width < 1 or height < 1:
        raise InputError("an image of no pixels")
    return fmt, width, height


def probe_audio(path: Path) -> tuple[str, float]:
    """(format, duration in seconds) of a sound file; InputError when it is not one."""
    import mutagen

    try:
        sound = mutagen.File(path)
    except Exception as exc:  # mutagen raises its own errors, and struct/OS errors
        raise InputError(
            f"not a sound file mutagen can read ({type(exc).__name__}: {exc})"
        ) from None
    length = getattr(getattr(sound, "info", None), "length", None)
    if sound is None or not length or length <= 0:
        raise InputError("not a sound file (no audio stream of any length found)")
    return path.suffix.lower().lstrip("."), float(length)


def _probe(path: Path, relative: str) -> MediaFile:
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix in IMAGE_SUFFIXES:
        fmt, width, height = probe_image(path)
        return MediaFile(relative, "image", fmt, size, width=width, height=height)
    fmt, duration = probe_audio(path)
    return MediaFile(relative, "audio", fmt, size, duration_s=duration)


def scan_folder(directory: Path, *, progress: Callable[[int], None] | None = None) -> FolderScan:
    """Every image and sound under ``directory``, in path order, decoded."""
    root = directory.resolve()
    files: list[MediaFile] = []
    refused: list[tuple[str, str]] = []
    ignored: list[str] = []
    for current, folders, names in os.walk(root):
        here = Path(current)
        kept = []
        for folder in sorted(folders):
            relative = (here / folder).relative_to(root).as_posix()
            if folder.startswith("."):
                ignored.append(relative + "/")
            elif (here / folder).is_symlink():
                # Not followed: its files would be outside the folder, or twice in it.
                refused.append((relative + "/", "a link to a folder (not followed)"))
            else:
                kept.append(folder)
        folders[:] = kept
        for name in sorted(names):
            path = here / name
            relative = path.relative_to(root).as_posix()
            if name.startswith("."):
                ignored.append(relative)
                continue
            suffix = path.suffix.lower()
            if suffix not in IMAGE_SUFFIXES and suffix not in AUDIO_SUFFIXES:
                ignored.append(relative)
                continue
            try:
                target = path.resolve(strict=True)
            except OSError:
                refused.append((relative, "a broken link"))
                continue
            if not target.is_relative_to(root):
                refused.append((relative, "a link to a file outside the folder"))
                continue
            try:
                files.append(_probe(target, relative))
            except InputError as exc:
                refused.append((relative, str(exc)))
            if progress:
                progress(1)
    files.sort(key=lambda f: f.relative)
    return FolderScan(files, refused, ignored)


def _listed(refused: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{relative}: {why}" for relative, why in refused[:_SHOWN])
    more = len(refused) - _SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


# --- importing -------------------------------------------------------------------------------


def _table(files: list[MediaFile], name: str) -> pa.Table:
    return pa.table(
        {
            "item_id": pa.array([f.relative for f in files], pa.string()),
            "path": pa.array([f"{name}/{f.relative}" for f in files], pa.string()),
            "file_type": pa.array([f.file_type for f in files], pa.string()),
            "format": pa.array([f.format for f in files], pa.string()),
            "size_bytes": pa.array([f.size_bytes for f in files], pa.int64()),
            "width": pa.array([f.width for f in files], pa.int64()),
            "height": pa.array([f.height for f in files], pa.int64()),
            "duration_s": pa.array([f.duration_s for f in files], pa.float64()),
        }
    )


def _copy_files(files: list[MediaFile], source: Path, target: Path) -> None:
    """Copy the files (never link them: the dataset keeps what was imported)."""
    for media in files:
        destination = target / media.relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / media.relative, destination)


def import_folder(
    con: duckdb.DuckDBPyConnection,
    name: str,
    directory: Path | str,
    media_root: Path | str,
    *,
    replace: bool = False,
    skip_bad: bool = False,
    task: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> FolderImport:
    """Make the images and sounds of ``directory`` dataset ``name``; copy them under
    ``media_root/name``.

    Parameters
    ----------
    con : DuckDB connection to the store
    name : str
        Dataset name (also the folder under ``media_root``).
    directory : the folder to import, walked recursively
    media_root : the project's ``media/`` folder
    replace : bool, default=False
        Replace dataset ``name`` and its files if they exist (else that is an error).
    skip_bad : bool, default=False
        Import the files that decode and list the others, instead of refusing the whole
        folder.
    task : str, optional
        The dataset's task; by default ``audio`` for a folder of sounds only, else the
        project's.
    """
    check_dataset_name(name)
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder")
    media_root = Path(media_root)
    target = media_root / name
    if target.exists() and not replace:
        raise InputError(
            f"{target} exists already: pass --replace to replace dataset {name!r} and its "
            "files, or import under another name"
        )
    scan = scan_folder(directory, progress=progress)
    if scan.refused and not skip_bad:
        raise InputError(
            f"{directory}: {len(scan.refused)} file(s) refused, nothing was imported: "
            f"{_listed(scan.refused)} (pass --skip-bad to import the others and list these)"
        )
    if not scan.files:
        raise InputError(
            f"{directory} holds no image ({', '.join(sorted(IMAGE_SUFFIXES))}) and no sound "
            f"({', '.join(sorted(AUDIO_SUFFIXES))})"
        )
    images = sum(f.file_type == "image" for f in scan.files)
    sounds = len(scan.files) - images
    if task is None and images == 0:
        task = "audio"
    media_root.mkdir(parents=True, exist_ok=True)
    incoming = media_root / f".incoming-{name}-{os.getpid()}"
    previous = media_root / f".previous-{name}-{os.getpid()}"
    shutil.rmtree(incoming, ignore_errors=True)
    moved_away = swapped = False
    try:
        _copy_files(scan.files, directory.resolve(), incoming)
        with transaction(con):
            _check_replaceable(con, name, replace)
            con.register("_incoming_folder", _table(scan.files, name))
            try:
                replaced = _install(
                    con, name, "SELECT * FROM _incoming_folder ORDER BY item_id", "TABLE"
                )
            finally:
                con.unregister("_incoming_folder")
            # The files are swapped last, inside the transaction: a failure before the
            # commit puts the old ones back.
            if target.exists():
                os.replace(target, previous)
                moved_away = True
            os.replace(incoming, target)
            swapped = True
    except BaseException:
        if swapped:  # the commit failed: the new files go, the old ones come back
            shutil.rmtree(target, ignore_errors=True)
        if moved_away:
            os.replace(previous, target)
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return FolderImport(
        name=name,
        rows=len(scan.files),
        columns=list(FOLDER_COLUMNS),
        id_column=None,
        kind="folder",
        source=str(directory.resolve()),
        replaced=replaced,
        task=task,
        images=images,
        sounds=sounds,
        skipped=scan.refused,
        ignored=len(scan.ignored),
    )
