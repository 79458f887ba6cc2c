"""The in-memory handout index, the item_state table beside label_events, and the service
keeping both in step with the store (restart, new queue generations, random action mixes)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from active_labeling.flow.project import Project
from active_labeling.flow.recipes import run_recipe
from active_labeling.labeling.handout import HandoutIndex, Lease
from active_labeling.labeling.service import LabelingService
from active_labeling.store.connection import connect
from active_labeling.store.labels import LabelEvent, append_events
from active_labeling.store.schema import SCHEMA_VERSION

from flow_helpers import declare_train_and_query, make_project

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def test_the_index_walks_the_queue_past_taken_items_and_back_to_freed_ones():
    index = HandoutIndex(touched={"c"}, leases={"a": Lease("ann", T0, T0 + 5 * MINUTE)})
    index.set_queue(1, ["a", "b", "c", "d", "e"], [0.9, 0.8, 0.7, 0.6, 0.5])
    assert index.left_in_queue == 4  # c is labeled; a is leased but still to do
    assert index.free_in_queue(2, T0) == ["b", "d"]
    index.lease("b", "bob", T0, T0 + 10 * MINUTE)
    index.recorded("d", "labeled")
    assert index.free_in_queue(3, T0) == ["e"]
    assert index.left_in_queue == 3
    # a's lease runs out at 5 minutes: a is offered again, before e.
    assert index.free_in_queue(3, T0 + 6 * MINUTE) == ["a", "e"]
    index.recorded("c", "undone")  # an undo puts c back, at its rank
    assert index.free_in_queue(3, T0 + 6 * MINUTE) == ["a", "c", "e"]
    assert index.left_in_queue == 4
    assert index.rank("c") == 3 and index.score("c") == 0.7 and index.rank("zz") is None


def test_renewed_leases_do_not_expire_at_their_first_deadline():
    index = HandoutIndex(touched=(), leases={})
    index.set_queue(1, ["a", "b"])
    index.lease("a", "ann", T0, T0 + MINUTE)
    index.renew("ann", T0 + 0.5 * MINUTE, T0 + 3 * MINUTE)
    assert index.free_in_queue(2, T0 + 2 * MINUTE) == ["b"]
    assert index.holder("a", T0 + 2 * MINUTE) == "ann"
    assert index.held_by("ann", T0 + 2 * MINUTE) == ["a"]
    assert index.free_in_queue(2, T0 + 4 * MINUTE) == ["a", "b"]
    assert index.holder("a", T0 + 4 * MINUTE) is None


def test_held_items_come_back_in_the_order_they_were_handed_out():
    index = HandoutIndex(touched=(), leases={})
    index.set_queue(1, ["a", "b", "c"])
    for i, item in enumerate(["c", "a", "b"]):
        index.lease(item, "ann", T0 + i * timedelta(microseconds=1), T0 + MINUTE)
    index.recorded("a", "skipped")
    assert index.held_by("ann", T0) == ["c", "b"]


def _item_state(con):
    return sorted(
        con.execute("SELECT dataset, item_id, event_id, status, label FROM item_state").fetchall()
    )


def _latest_events(con):
    """item_state as label_events says it should be: each item's events replayed as a
    stack (labeled/skipped push, undone pops), written out here independently."""
    rows = con.execute(
        "SELECT dataset, item_id, event_id, status, label FROM label_events "
        "ORDER BY dataset, item_id, event_id"
    ).fetchall()
    by_item: dict = {}
    for dataset, item, event_id, status, label in rows:
        stack, _ = by_item.get((dataset, item), ([], None))
        if status == "undone":
            stack = stack[:-1]
        else:
            stack = [*stack, (event_id, status, label)]
        by_item[(dataset, item)] = (stack, (event_id, status, label))
    return sorted(
        (dataset, item, *(stack[-1] if stack else last))
        for (dataset, item), (stack, last) in by_item.items()
    )


def test_item_state_follows_appends_and_imports(tmp_path):
    project = make_project(tmp_path / "p", n=40, n_labels=10)  # imported labels
    with project.connect() as con:
        append_events(
            con,
            [
                LabelEvent("pool", "I1", "labeled", "ann", label="no"),
                LabelEvent("pool", "I1", "undone", "ann"),
                LabelEvent("pool", "I0", "labeled", "bob", label="no"),  # a relabel
                LabelEvent("pool", "I3", "skipped", "bob"),
                LabelEvent("pool", "I4", "labeled", "bob", label="yes"),  # imported: no
                LabelEvent("pool", "I4", "undone", "bob"),  # ... back to the import's
            ],
        )
        assert _item_state(con) == _latest_events(con)
        current = dict(con.execute("SELECT item_id, label FROM current_labels").fetchall())
        assert current["I0"] == "no" and "I1" not in current and "I3" not in current
        assert current["I4"] == "no"  # the imported label, restored by the undo
        touched = {r[0] for r in con.execute("SELECT item_id FROM touched_items").fetchall()}
        assert {"I0", "I3"} <= touched and "I1" not in touched


def test_a_store_of_schema_1_gets_its_item_state_rebuilt(tmp_path):
    project = make_project(tmp_path / "p", n=40, n_labels=10)
    with project.connect() as con:
        append_events(
            con,
            [
                LabelEvent("pool", "I0", "undone", "ann"),
                LabelEvent("pool", "I4", "labeled", "ann", label="yes"),
                LabelEvent("pool", "I4", "undone", "ann"),
            ],
        )
        expected = _latest_events(con)
        con.execute("DELETE FROM item_state")
        con.execute("UPDATE store_meta SET value = '1' WHERE key = 'schema_version'")
    con = connect(project.root / "store.duckdb")
    try:
        assert _item_state(con) == expected and len(expected) == 10
        assert [r[3:] for r in expected if r[1] == "I4"] == [("labeled", "no")]  # the import's
        assert con.execute(
            "SELECT value FROM store_meta WHERE key = 'schema_version'"
        ).fetchone() == (str(SCHEMA_VERSION),)
    finally:
        con.close()


def test_a_store_of_a_newer_schema_is_refused(tmp_path):
    project = make_project(tmp_path / "p", n=10, n_labels=0)
    with project.connect() as con:
        con.execute("UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(Exception, match="newer active-labeling"):
        connect(project.root / "store.duckdb")


@pytest.fixture
def queued(tmp_path):
    project = make_project(tmp_path / "p", n=80, n_labels=20)
    declare_train_and_query(project, run=True, queue_size=30)
    return project


def test_random_actions_keep_memory_store_and_events_in_step(queued):
    """Many labelers, random label/skip/undo/heartbeat: no item leased twice; the index,
    item_state and label_events agree; a new service built from the store agrees too."""
    rng = random.Random(7)
    con = queued.connect()
    service = LabelingService(queued, con, lease_minutes=10)
    service.hints.wait(60)  # the test reads con directly: no hint thread beside it
    users = [f"u{i}" for i in range(5)]
    for _ in range(120):
        user = rng.choice(users)
        action = rng.random()
        if action < 0.1:
            try:
                service.undo(user)
            except Exception as exc:  # nothing to undo yet
                assert "nothing to undo" in str(exc)
            continue
        items = service.next_items(user, rng.randint(1, 3), hint=False).items
        if not items:
            break
        item = items[0]["item_id"]
        if action < 0.2:
            service.heartbeat(user, item)
        elif action < 0.35:
            service.record(user, item, status="skipped")
        else:
            service.record(user, item, status="labeled", label=rng.choice(["yes", "no"]))
        now = datetime.now(timezone.utc)
        holders = [
            lease.annotator for lease in service.index.leases.values() if lease.expires_at > now
        ]
        assert len(holders) == len(service.index.leases)  # one holder per item, by design
    assert _item_state(con) == _latest_events(con)
    touched = {r[0] for r in con.execute("SELECT item_id FROM touched_items").fetchall()}
    assert service.index.touched == touched
    stored = dict(
        con.execute("SELECT item_id, annotator FROM leases WHERE expires_at > now()").fetchall()
    )
    assert {k: v.annotator for k, v in service.index.leases.items()} == stored
    left = service.progress(users[0])["left_in_queue"]
    fresh = LabelingService(queued, con, lease_minutes=10)  # as after a restart
    fresh.hints.wait(60)
    assert fresh.index.touched == service.index.touched
    assert fresh.progress(users[0])["left_in_queue"] == left
    fresh.hints.close()
    service.close()


def test_a_new_queue_generation_is_taken_up_without_a_restart(queued):
    con = queued.connect()
    service = LabelingService(queued, con, lease_minutes=10)
    kept = service.next_items("ann", 2, hint=False).items
    first_generation = kept[0]["generation_id"]
    run_recipe(Project.open(queued.root), "query", progress=False, connection=con)
    service.refresh()
    fresh = service.next_items("bob", 1, hint=False).items[0]
    assert fresh["generation_id"] > first_generation
    assert fresh["item_id"] not in {i["item_id"] for i in kept}  # ann's leases still hold
    again = service.next_items("ann", 2, hint=False).items
    assert [i["item_id"] for i in again] == [i["item_id"] for i in kept]
    service.close()


def test_undo_walks_back_through_relabels(queued):
    con = queued.connect()
    service = LabelingService(queued, con, lease_minutes=10)
    item = service.next_items("ann", 1, hint=False).items[0]["item_id"]
    service.record("ann", item, status="labeled", label="yes")
    service.record("ann", item, status="labeled", label="no")  # back to it, changed
    undone, shown = service.undo("ann")
    assert undone == {"item_id": item, "label": "no", "status": "labeled"}
    assert shown["current_label"] == "yes"  # the earlier label, not nothing
    assert item in service.index.touched  # still labeled: not handed out again
    _, shown = service.undo("ann")
    assert shown["current_label"] is None and item not in service.index.touched
    assert service.next_items("ann", 1, hint=False).items[0]["item_id"] == item  # leased back
    assert _item_state(con) == _latest_events(con)
    service.close()


def test_overlap_items_go_to_a_second_labeler_never_the_first(queued):
    project = Project.open(queued.root)
    project.config.project.overlap = 0.3
    con = queued.connect()
    service = LabelingService(project, con, lease_minutes=10)
    chosen = [i for i in (f"I{n}" for n in range(80)) if service.wants_second_label(i)]
    assert 10 <= len(chosen) <= 40  # about 30% of 80, a fixed draw per id
    assert chosen == [i for i in (f"I{n}" for n in range(80)) if service.wants_second_label(i)]
    firsts = {}
    for _ in range(12):  # ann labels the queue's top items
        item = service.next_items("ann", 1, hint=False).items[0]["item_id"]
        service.record("ann", item, status="labeled", label="yes")
        firsts[item] = "ann"
    waiting = [i for i in firsts if i in chosen]
    assert waiting, "some of ann's items need a second opinion"
    assert all(i not in waiting for i in (x["item_id"] for x in service.next_items("ann", 3).items))
    bobs = service.next_items("bob", len(waiting), hint=False).items
    assert [i["item_id"] for i in bobs] == waiting  # first, in the order ann labeled them
    assert all(i["current_label"] is None for i in bobs)  # blind: bob does not see ann's label
    service.record("bob", waiting[0], status="labeled", label="no")
    restarted = LabelingService(project, con, lease_minutes=10)  # the store says the same
    assert list(restarted.index.waiting) == waiting[1:]
    assert restarted.index.labelers[waiting[0]] == {"ann", "bob"}
    restarted.undo("bob")  # bob takes his label back: the item waits again, leased to bob
    assert waiting[0] in restarted.index.waiting
    again = restarted.next_items("bob", len(waiting), hint=False).items
    assert sorted(i["item_id"] for i in again) == sorted(waiting)
    carls = restarted.next_items("carl", 3, hint=False).items  # all held by bob: new items
    assert not {i["item_id"] for i in carls} & set(waiting)
    restarted.hints.close()
    service.close()


def test_a_server_started_before_any_queue_serves_the_first_one_written(tmp_path):
    project = make_project(tmp_path / "p", n=60, n_labels=20)
    declare_train_and_query(project, run=False, queue_size=10)
    con = project.connect()
    service = LabelingService(project, con, lease_minutes=10)
    first = service.next_items("ann", 1, hint=False)
    # No queue yet: dataset order, and not "the ranked queue is done" (there never was one).
    assert not first.has_queue and not first.queue_exhausted
    assert first.items[0]["generation_id"] is None
    run_recipe(Project.open(project.root), "train", progress=False, connection=con)
    run_recipe(Project.open(project.root), "query", progress=False, connection=con)
    service.refresh()
    handout = service.next_items("bob", 1, hint=False)
    assert handout.has_queue and not handout.queue_exhausted and handout.items[0]["rank"] == 1
    assert service.queue == "queue"
    service.close()


def test_a_handout_across_the_end_of_the_queue_gives_each_item_once(tmp_path):
    project = make_project(tmp_path / "p", n=60, n_labels=20)
    declare_train_and_query(project, run=True, queue_size=35)  # 5 unlabeled items left out
    con = project.connect()
    service = LabelingService(project, con, lease_minutes=10)
    for _ in range(30):
        item = service.next_items("bob", 1, hint=False).items[0]["item_id"]
        service.record("bob", item, status="labeled", label="yes")
    handout = service.next_items("ann", 10, hint=False)
    ids = [i["item_id"] for i in handout.items]
    assert len(ids) == 10 and len(set(ids)) == 10  # 5 from the queue, 5 in dataset order
    assert handout.queue_exhausted and [i["rank"] for i in handout.items[:5]] == [
        31,
        32,
        33,
        34,
        35,
    ]
    service.close()
