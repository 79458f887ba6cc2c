"""Who may touch which item: a labeler writes only to items handed out to them or to their
own earlier items, and never learns another labeler's label (from a security review)."""

from __future__ import annotations

import pytest

from active_labeling.flow.project import Project
from active_labeling.labeling.service import ConflictError, LabelingService

from flow_helpers import declare_train_and_query, make_project


@pytest.fixture
def service(tmp_path):
    project = make_project(tmp_path / "p", n=80, n_labels=20)
    declare_train_and_query(project, run=True, queue_size=30)
    project = Project.open(project.root)
    service = LabelingService(project, project.connect(), lease_minutes=10)
    yield service
    service.close()


def _next(service, user, count=1):
    return [i["item_id"] for i in service.next_items(user, count, hint=False).items]


def test_a_heartbeat_renews_only_a_lease_handed_out_to_that_labeler(service):
    anns = _next(service, "ann", 2)
    before = service.index.leases[anns[0]].expires_at
    service.heartbeat("ann", anns[0])  # ann's own lease: renewed
    assert service.index.leases[anns[0]].expires_at > before
    for item in (f"I{n}" for n in range(80)):  # bob tries to hold every item
        with pytest.raises(ConflictError):
            service.heartbeat("bob", item)
    assert not [i for i, lease in service.index.leases.items() if lease.annotator == "bob"]
    # The queue is not blocked: the next labeler still gets ranked items.
    handout = service.next_items("dora", 2, hint=False)
    assert not handout.queue_exhausted and all(i["rank"] for i in handout.items)


def test_a_labeler_cannot_overwrite_someone_elses_label(service):
    item = _next(service, "ann", 1)[0]
    service.record("ann", item, status="labeled", label="yes")
    with pytest.raises(ConflictError, match="labeled by someone else"):
        service.record("bob", item, status="labeled", label="no")
    # ann may still change her own label (back to an earlier item), and undo it.
    service.record("ann", item, status="labeled", label="no")
    undone, _ = service.undo("ann")
    assert undone["item_id"] == item and undone["label"] == "no"


def test_undo_leaves_an_overlap_item_with_its_second_labeler(tmp_path):
    project = make_project(tmp_path / "p", n=80, n_labels=20)
    declare_train_and_query(project, run=True, queue_size=30)
    project = Project.open(project.root)
    project.config.project.overlap = 0.9
    service = LabelingService(project, project.connect(), lease_minutes=10)
    try:
        item = next(
            i for i in (_next(service, "ann", 1)[0] for _ in range(10)) if _label(service, i)
        )
        assert _next(service, "bob", 1) == [item]  # the second opinion, blind
        assert service.item(item, "bob", hint=False)["current_label"] is None
        assert service.item(item, "ann", hint=False)["current_label"] == "yes"
        service.undo("ann")  # ann takes hers back while bob looks at the item
        assert service.index.holder(item, service_now()) == "bob"
        service.record("bob", item, status="labeled", label="no")  # bob's label goes in
    finally:
        service.close()


def _label(service, item) -> bool:
    """ann labels ``item``; whether it waits for a second label."""
    service.record("ann", item, status="labeled", label="yes")
    return service.wants_second_label(item)


def service_now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
