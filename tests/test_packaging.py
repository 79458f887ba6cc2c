"""The distribution carries everything it needs: a wheel built from the checkout, installed
in a fresh virtual environment, runs the README's walkthrough from another folder and
serves the labeling app.

The wheel is built as ``python -m build`` does (an sdist, then a wheel from the unpacked
sdist, so MANIFEST.in is tested too) from a copy of the checkout, without build isolation:
nothing is downloaded. The fresh environment has no pip and no packages of its own but the
wheel; it sees the test environment's site-packages (the dependencies) through a ``.pth``
line, which adds that folder without running its ``.pth`` files: the editable install of
the checkout stays out of it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Not part of a source tree: left out of the copy the wheel is built from.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".ruff_cache", ".cache", ".demo", "*.duckdb", "*.duckdb.wal",
)  # fmt: skip
COMPONENTS = ("plugin.json", "recipes", "webapps", "plugin")


def _run(argv, *, cwd, env=None, timeout=120) -> subprocess.CompletedProcess:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{shlex.join(map(str, argv))} exited {done.returncode} in {cwd}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def build_wheel(work: Path) -> Path:
    """sdist from a copy of the checkout, then the wheel from the unpacked sdist."""
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    backend = "from setuptools import build_meta as b; import sys; print(b.{}(sys.argv[1]))"
    sdist = _run(
        [sys.executable, "-c", backend.format("build_sdist"), str(work / "dist")], cwd=source
    ).stdout.split()[-1]
    with tarfile.open(work / "dist" / sdist) as archive:
        archive.extractall(
            work / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {})
        )
    (unpacked,) = (work / "unpacked").iterdir()
    wheel = _run(
        [sys.executable, "-c", backend.format("build_wheel"), str(work / "dist")], cwd=unpacked
    ).stdout.split()[-1]
    return work / "dist" / wheel


def fresh_venv(work: Path, wheel: Path) -> Path:
    """A venv holding only the wheel (installed by pip, console script included)."""
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--no-compile", "--quiet", str(wheel)],
        cwd=work,
    )  # fmt: skip
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=work,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


def readme_block(heading: str) -> list[str]:
    """The shell commands of the first bash block under ``heading`` in README.md, with
    continuation lines joined and comments removed."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("active-labeling "):
            commands.append(line)
    return commands


def write_walkthrough_files(folder: Path) -> None:
    """emails.csv and first-labels.csv, as the README's walkthrough names them."""
    spam = ["win money now", "cheap pills offer", "claim your prize", "free credit click"]
    ham = ["meeting at noon", "lunch tomorrow", "project notes attached", "see you monday"]
    rows, labels = ["id,subject,length"], ["id,label"]
    for i in range(240):
        kind, words = ("spam", spam) if i % 2 else ("ham", ham)
        rows.append(f"E{i},{words[i % 4]} {i % 7},{20 + (i * 7) % 50}")
        if i < 24:
            labels.append(f"E{i},{kind}")
    (folder / "emails.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "first-labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_a_wheel_installs_everything_and_serves_from_another_folder(tmp_path):
    wheel = build_wheel(tmp_path / "build")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for component in (
        "plugin.json",
        "recipes/train-model/recipe.json",
        "webapps/labeling/static/index.html",
        "plugin/steps/train-model/step.json",
    ):
        assert f"active_labeling/_plugin/{component}" in names, component  # fmt: skip
    assert not any("__pycache__" in name for name in names)

    venv = fresh_venv(tmp_path / "build", wheel)
    command = str(venv / "bin" / "active-labeling")
    elsewhere = tmp_path / "elsewhere"  # no checkout around it
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("ACTIVE_LABELING_PLUGIN_ROOT", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run(
        [str(venv / "bin" / "python"), "-c",
         "import active_labeling.flow.descriptors as d; print(d.__file__); print(d.plugin_root())"],
        cwd=elsewhere, env=env,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv) for p in where), where

    write_walkthrough_files(elsewhere)
    walkthrough = readme_block("## From a CSV to a ranked queue")
    assert len(walkthrough) >= 8, walkthrough
    browser = readme_block("Then label in the browser")
    loop = readme_block("## The loop on its own")
    serve = next(c for c in browser if " serve " in c)
    for line in walkthrough + [c for c in browser if c != serve] + loop:
        argv = shlex.split(line)
        done = _run([command, *argv[1:]], cwd=elsewhere, env=env)
        assert "error" not in done.stderr.lower(), (line, done.stderr)

    port = _free_port()
    argv = [command, *shlex.split(serve)[1:], "--port", str(port), "--no-scenarios"]
    server = subprocess.Popen(
        argv, cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert _get(f"{url}/healthz") == (200, '{"ok":true}')
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not start: {server.stdout.read()}")
                time.sleep(0.2)
        status, page = _get(f"{url}/static/login.html")
        assert status == 200 and "<form" in page
        # A command while the server owns the store goes through it, from the wheel too.
        shown = _run([command, "queue", "show", "my-project", "--top", "3"], cwd=elsewhere, env=env)
        assert "generation" in shown.stdout
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as the serve command says
        server.wait(timeout=30)
        server.stdout.close()
    assert server.returncode == 0
    assert not (elsewhere / "my-project" / "serve.json").exists()
