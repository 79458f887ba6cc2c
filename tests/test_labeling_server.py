"""The labeling server as it runs: a real ``active-labeling serve`` process on 127.0.0.1.

Ten labelers at once, each with its own API token, against one server: no item is handed
to two labelers at once, every acknowledged label is in the store exactly once. Then the
server is killed with SIGKILL in the middle of the work and started again: nothing
acknowledged is lost, leases survive the restart, and expired leases free their items.

Every server started here is stopped here (SIGKILL in ``finally``); every request loop is
bounded in count and in time; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from active_labeling.labeling.auth import add_user, create_token
from active_labeling.store import connect

from flow_helpers import declare_train_and_query, make_project

N_ITEMS = 300
N_SEED_LABELS = 20
QUEUE_SIZE = 250
N_LABELERS = 10
CLASSES = ("yes", "no")
REQUEST_TIMEOUT = 20.0  # s, per request
STARTUP_TIMEOUT = 30.0  # s, for /healthz


# --- the project, built once, copied per test ----------------------------------------------


@pytest.fixture(scope="module")
def base_project(tmp_path_factory):
    """A project with a trained model and a ranked queue; labelers and an admin, with tokens.

    The store connection is closed before any server starts: the server needs the write lock.
    """
    root = tmp_path_factory.mktemp("server") / "base"
    project = make_project(root, n=N_ITEMS, n_labels=N_SEED_LABELS)
    declare_train_and_query(project, run=True, queue_size=QUEUE_SIZE)
    tokens = {}
    with project.connect() as con:
        for i in range(N_LABELERS + 3):
            name = f"labeler{i}"
            add_user(con, name, "labeler")
            tokens[name] = create_token(con, name)
        add_user(con, "boss", "admin")
        tokens["boss"] = create_token(con, "boss")
    return root, tokens


@pytest.fixture
def project(base_project, tmp_path):
    """A fresh copy of the base project (path, tokens): each test mutates its own store."""
    base, tokens = base_project
    root = tmp_path / "project"
    shutil.copytree(base, root)
    return root, tokens


# --- a server in a child process ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``active-labeling serve ROOT`` on a free port of 127.0.0.1; ``stop`` or ``kill`` it."""

    def __init__(self, root: Path, *, lease_minutes: float, log_dir: Path, tag: str, extra=()):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"server-{tag}.log"
        cmd = [
            sys.executable,
            "-m",
            "active_labeling.cli",
            "serve",
            str(root),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lease-minutes",
            str(lease_minutes),
            *extra,
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {STARTUP_TIMEOUT} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, the store is closed by nobody."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (uvicorn closes the store), SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT,
        )


# --- labelers --------------------------------------------------------------------------------


@dataclass
class Journal:
    """What the labelers saw, stamped with time.monotonic() (one process, one clock)."""

    handouts: list = field(default_factory=list)  # (labeler, item_id, received_at)
    acks: list = field(default_factory=list)  # (labeler, item_id, label, event_id, acked_at)
    refused: list = field(default_factory=list)  # (labeler, item_id, status, body)
    transport_errors: list = field(default_factory=list)  # (labeler, error)
    lock: threading.Lock = field(default_factory=threading.Lock)


def labeler_loop(server, name, token, journal, *, max_items, deadline, stop, seed, count=1):
    """next -> label (a random class) for at most ``max_items`` items or until ``deadline``.

    Stops at the first transport error (the server died) or when ``stop`` is set.
    """
    rng = random.Random(seed)
    with server.client(token) as client:
        for _ in range(max_items):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                response = client.get(f"/api/items/next?count={count}")
                received = time.monotonic()
                if response.status_code != 200:
                    with journal.lock:
                        journal.refused.append((name, None, response.status_code, response.text))
                    return
                items = [i["item_id"] for i in response.json()["items"]]
                with journal.lock:
                    journal.handouts += [(name, item, received) for item in items]
                if not items:
                    return
                item, label = items[0], rng.choice(CLASSES)
                response = client.post(f"/api/items/{item}/label", json={"label": label})
                acked = time.monotonic()
            except httpx.TransportError as exc:
                with journal.lock:
                    journal.transport_errors.append((name, repr(exc)))
                return
            with journal.lock:
                body = response.json()
                if response.status_code == 200 and body["item_id"] == item:
                    journal.acks.append((name, item, label, body["event_id"], acked))
                else:
                    journal.refused.append((name, item, response.status_code, response.text))


def run_labelers(server, tokens, journal, *, names, max_items, seconds, stop=None, counts=(1,)):
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=labeler_loop,
            args=(server, name, tokens[name], journal),
            kwargs={
                "max_items": max_items,
                "deadline": deadline,
                "stop": stop,
                "seed": i,
                "count": counts[i % len(counts)],
            },
            daemon=True,
        )
        for i, name in enumerate(names)
    ]
    for thread in threads:
        thread.start()
    return threads


def join_all(threads, timeout: float) -> None:
    end = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a labeler did not finish in time"


def overlapping_handouts(journal: Journal) -> list:
    """Items handed to a second labeler before the first one's label was acknowledged.

    A labeler holds an item from its first handout until its label is acknowledged (or for
    ever, if never labeled). Handing the item to anyone else inside that interval is a
    double handout.
    """
    acked = {(name, item): at for name, item, _, _, at in journal.acks}
    first_seen: dict[tuple[str, str], float] = {}
    for name, item, at in journal.handouts:
        first_seen.setdefault((name, item), at)
    by_item: dict[str, list] = {}
    for (name, item), at in first_seen.items():
        by_item.setdefault(item, []).append((at, name))
    bad = []
    for item, seen in by_item.items():
        seen.sort()
        for (at_a, a), (at_b, b) in itertools.pairwise(seen):
            released = acked.get((a, item), float("inf"))
            if at_b < released:
                bad.append((item, a, b, at_a, at_b, released))
    return bad


def store_events(root: Path) -> list[tuple]:
    """(event_id, item_id, label, status, annotator) of every event, server stopped."""
    con = connect(root / "store.duckdb", read_only=True)
    try:
        return con.execute(
            "SELECT event_id, item_id, label, status, annotator FROM label_events ORDER BY event_id"
        ).fetchall()
    finally:
        con.close()


def check_acks_in_store(journal: Journal, events: list[tuple]) -> None:
    """Every acknowledged label is one event, as acknowledged; no event repeats an ack."""
    by_id = {e[0]: e for e in events}
    for name, item, label, event_id, _ in journal.acks:
        assert by_id.get(event_id) == (event_id, item, label, "labeled", name), (
            f"acknowledged label {event_id} ({name}, {item}, {label}) is not in the store as such"
        )
    ours = [e for e in events if e[4] != "import" and e[3] == "labeled"]
    keys = [(e[4], e[1]) for e in ours]
    assert len(keys) == len(set(keys)), "one labeler's label of an item was written twice"
    labelers_per_item: dict[str, set] = {}
    for _, item, _, _, annotator in ours:
        labelers_per_item.setdefault(item, set()).add(annotator)
    twice = {i: a for i, a in labelers_per_item.items() if len(a) > 1}
    assert not twice, f"items labeled by two labelers: {twice}"


# --- tests -------------------------------------------------------------------------------------


def test_ten_labelers_at_once_get_distinct_items_and_every_ack_is_stored_once(project, tmp_path):
    root, tokens = project
    names = [f"labeler{i}" for i in range(N_LABELERS)]
    journal = Journal()
    server = Server(root, lease_minutes=10, log_dir=tmp_path, tag="concurrency")
    try:
        server.wait_ready()
        with server.client(tokens["boss"]) as boss:  # the first handout loads the model
            assert boss.get("/api/items/next").status_code == 200
        # Half ask for one item at a time, half for three (the web app prefetches).
        threads = run_labelers(
            server, tokens, journal, names=names, max_items=8, seconds=40, counts=(1, 3)
        )
        join_all(threads, timeout=45)
        assert not journal.transport_errors, journal.transport_errors
        assert not journal.refused, journal.refused
        assert len(journal.acks) == N_LABELERS * 8
        # An item another labeler holds is refused with 409, and nothing is written.
        held = {
            item
            for name, item, _ in journal.handouts
            if name == "labeler1" and (name, item) not in {(a[0], a[1]) for a in journal.acks}
        }
        assert held, "labeler1 (count=3) should still hold prefetched items"
        with server.client(tokens["labeler0"]) as other:
            response = other.post(f"/api/items/{sorted(held)[0]}/label", json={"label": "yes"})
            assert response.status_code == 409, response.text
    finally:
        server.stop()
    assert server.proc.returncode is not None
    assert overlapping_handouts(journal) == []
    events = store_events(root)
    check_acks_in_store(journal, events)
    assert sum(e[4] != "import" for e in events) == len(journal.acks)  # the 409 wrote nothing


def test_sigkill_mid_run_loses_no_acknowledged_label_and_expired_leases_come_back(
    project, tmp_path
):
    """Leases carry the expiry of the server that granted them: the first server grants
    short ones (0.4 min) so that the test can wait past them; the restarted one 0.02 min."""
    root, tokens = project
    first_lease_s = 0.4 * 60  # long enough to check, after a restart, that leases survived
    names = [f"labeler{i}" for i in range(N_LABELERS)]
    journal = Journal()
    stop = threading.Event()
    server = Server(root, lease_minutes=0.4, log_dir=tmp_path, tag="before-crash")
    threads = []
    try:
        server.wait_ready()
        with server.client(tokens["boss"]) as boss:  # the first handout loads the model
            response = boss.get("/api/items/next")
            assert response.status_code == 200
            # Leased and never labeled: whatever the labelers manage before the kill, at
            # least this item must come back once its lease expires.
            kept_back = response.json()["items"][0]["item_id"]
        threads = run_labelers(
            server, tokens, journal, names=names, max_items=200, seconds=30, stop=stop
        )
        deadline = time.monotonic() + 20
        while len(journal.acks) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(journal.acks) >= 40, "the labelers did not get going"
        server.kill()  # mid-run: requests in flight
        crashed_at = time.monotonic()
    finally:
        stop.set()
        server.kill()
        join_all(threads, timeout=REQUEST_TIMEOUT + 5)
    assert journal.transport_errors, "the labelers should have seen the server die"
    assert not journal.refused, journal.refused
    handed = {item for _, item, _ in journal.handouts} | {kept_back}
    # serve.json outlives the kill, the server's lock does not: a command runs here.
    assert (root / "serve.json").exists()
    alone = cli("queue", "show", str(root), "--top", "1", cwd=tmp_path)
    assert alone.returncode == 0 and "no longer runs" in alone.stderr, alone.stderr
    assert not (root / "serve.json").exists()

    restarted = Server(root, lease_minutes=0.02, log_dir=tmp_path, tag="after-crash")
    try:
        restarted.wait_ready()
        with restarted.client(tokens["boss"]) as boss:
            events = boss.get("/api/admin/events?limit=1000").json()["events"]
        ids = {e["event_id"]: e for e in events}
        for name, item, label, event_id, _ in journal.acks:
            event = ids.get(event_id)
            assert event is not None, f"acknowledged label {event_id} lost in the crash"
            assert (event["item_id"], event["label"], event["annotator"]) == (item, label, name)
        labeled = {e["item_id"] for e in events if e["status"] == "labeled"}
        pending = handed - labeled  # leased before the crash, never labeled
        assert pending, "some items should have been leased but not labeled at the kill"
        assert len(pending) <= N_LABELERS + 1  # one in flight per labeler, and the boss's

        # Before the old leases expire, nobody else gets those items: leases survived.
        fresh = tokens[f"labeler{N_LABELERS}"]
        with restarted.client(fresh) as client:
            early = {i["item_id"] for i in client.get("/api/items/next?count=20").json()["items"]}
        if time.monotonic() - crashed_at < first_lease_s - 1:
            # (The boss's item was leased before the labelers started: it may have expired.)
            still_leased = pending - {kept_back}
            assert not early & still_leased, "an item still leased before the crash was handed out"
        else:  # a very slow machine: the old leases may have expired already
            warnings.warn("restart too slow to check that leases survive it", stacklevel=1)

        # Past every lease (the first server's and the new one's), they are handed out again.
        time.sleep(max(0.0, crashed_at + first_lease_s + 1.5 - time.monotonic()))
        again: set[str] = set()
        for name in (f"labeler{N_LABELERS + 1}", f"labeler{N_LABELERS + 2}"):
            if pending <= again:
                break
            with restarted.client(tokens[name]) as client:
                items = client.get("/api/items/next?count=20").json()["items"]
                again |= {i["item_id"] for i in items}
        assert pending <= again, f"never handed out again: {sorted(pending - again)}"
    finally:
        restarted.stop()
    check_acks_in_store(journal, store_events(root))


# --- other commands while the server runs ---------------------------------------------------


def cli(*argv, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "active_labeling.cli", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_go_through_the_running_server_and_its_handout_follows(project, tmp_path):
    root, tokens = project
    server = Server(root, lease_minutes=10, log_dir=tmp_path, tag="cli")
    try:
        server.wait_ready()
        shown = cli("queue", "show", str(root), "--top", "3", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        top = [line.split()[1] for line in shown.stdout.splitlines()[2:5]]
        assert len(top) == 3 and all(item.startswith("I") for item in top)
        # Labels imported from a relative path (the caller's directory) while the server runs.
        (tmp_path / "more.csv").write_text("id,label\n" + "".join(f"{i},yes\n" for i in top))
        imported = cli("labels", "import", str(root), "more.csv", cwd=tmp_path)
        assert imported.returncode == 0, imported.stderr
        with server.client(tokens["boss"]) as boss:
            handout = boss.get("/api/items/next", params={"count": 5}).json()["items"]
            assert not {i["item_id"] for i in handout} & set(top)  # the handout knows at once
            generation = handout[0]["generation_id"]
            requeued = cli("run", str(root), "query", "--quiet", cwd=tmp_path)
            assert requeued.returncode == 0, requeued.stderr
            fresh = boss.get("/api/items/next", params={"count": 6}).json()["items"]
            assert fresh[-1]["generation_id"] > generation  # a new generation, no restart
            assert [i["item_id"] for i in fresh[:5]] == [i["item_id"] for i in handout]
        missing = cli("labels", "import", str(root), "nope.csv", cwd=tmp_path)
        assert missing.returncode == 1 and "nope.csv" in missing.stderr
        refused = httpx.post(
            f"{server.url}/api/cli",
            json={"argv": ["queue", "show", str(root)], "cwd": str(tmp_path)},
            headers={"X-CLI-Token": "guess"},
        )
        assert refused.status_code == 401
        marker = json.loads((root / "serve.json").read_text())
        assert (root / "serve.json").stat().st_mode & 0o077 == 0  # the owner's only
        served = httpx.post(
            f"{server.url}/api/cli",
            json={"argv": ["serve", str(root)], "cwd": str(tmp_path)},
            headers={"X-CLI-Token": marker["cli_token"]},
        )
        assert served.status_code == 403
    finally:
        server.stop()
    assert not (root / "serve.json").exists()
    alone = cli("queue", "show", str(root), "--top", "1", cwd=tmp_path)  # no server: local
    assert alone.returncode == 0 and "generation" in alone.stdout


# --- the loop running itself ------------------------------------------------------------------


def test_the_server_runs_its_scenario_every_n_labels_and_serves_each_new_queue(tmp_path):
    """Oracle labelers label through the API; every 20 labels the default scenario trains,
    requeues and monitors in the server's process; the handout follows the new queues and
    the dashboard shows the runs, the metrics and the advice."""
    import csv

    from active_labeling.flow.project import Project
    from active_labeling.flow.scenarios import declare_default_recipes

    root = tmp_path / "loop"
    project = make_project(root, n=200, n_labels=0)
    with open(root / "pool.csv", encoding="utf-8") as handle:
        truth = {r["id"]: "yes" if float(r["age"]) > 40 else "no" for r in csv.DictReader(handle)}
    seed = [f"I{i}" for i in range(20)]
    (root / "seed.csv").write_text("id,label\n" + "".join(f"{i},{truth[i]}\n" for i in seed))
    from active_labeling.store import labels

    with project.connect() as con:
        labels.import_labels(con, "pool", root / "seed.csv", classes=list(CLASSES))
        ann, rita = add_user(con, "ann", "labeler"), add_user(con, "rita", "reviewer")
        tokens = {"ann": create_token(con, "ann"), "rita": create_token(con, "rita")}
    del ann, rita
    project = Project.open(root)
    declare_default_recipes(project, "pool")
    project = Project.open(root)
    project.config.scenarios["loop"].trigger.every_n_labels = 20
    project.save()

    server = Server(
        root,
        lease_minutes=10,
        log_dir=tmp_path,
        tag="loop",
        extra=("--scenario-poll-seconds", "0.5"),
    )
    try:
        server.wait_ready()
        generations = set()
        with server.client(tokens["ann"]) as ann, server.client(tokens["rita"]) as rita:

            def wait_for_runs(count: int) -> dict:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    board = rita.get("/api/dashboard").json()
                    done = [r for r in board["scenario_runs"] if r["status"] == "succeeded"]
                    failed = [r for r in board["scenario_runs"] if r["status"] == "failed"]
                    assert not failed, failed
                    if len(done) >= count:
                        return board
                    time.sleep(0.5)
                raise AssertionError(f"fewer than {count} scenario runs:\n{server.log.read_text()}")

            wait_for_runs(1)  # the 20 imported labels fire the trigger at once
            for round_ in range(2):
                for _ in range(20):
                    item = ann.get("/api/items/next").json()["items"][0]
                    generations.add(item["generation_id"])
                    answer = ann.post(
                        f"/api/items/{item['item_id']}/label",
                        json={"label": truth[item["item_id"]]},
                    )
                    assert answer.status_code == 200, answer.text
                board = wait_for_runs(round_ + 2)
            item = ann.get("/api/items/next").json()["items"][0]
            generations.add(item["generation_id"])
        assert len(generations - {None}) >= 2  # new queue generations, served without restart
        versions = {r["model_version"] for r in board["metrics"]}
        assert len(versions) >= 3  # one per run, each measured
        assert {"contradiction_ratio", "cv_accuracy"} <= {r["metric"] for r in board["metrics"]}
        assert board["advice"]["advice"] in ("continue", "stop", "check")
        assert board["advice"]["reasons"]
    finally:
        server.stop()
