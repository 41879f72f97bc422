"""The test run itself: tests that share a SLURM node, a module's sweep or a warm worker run in one test process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import ungrouped


@pytest.mark.xdist_group("ci")
def test_a_grouped_test_is_sent_to_its_groups_worker(request):
    if not hasattr(request.config, "workerinput"):
        pytest.skip("not run by xdist")
    assert request.node.nodeid.endswith("@ci"), request.node.nodeid  # xdist's loadgroup schedules by this suffix


def test_a_grouped_test_without_its_group_is_named():
    """What stops the run (``pytest_runtest_setup`` in conftest) when a pytest release drops xdist's groups."""
    worker = SimpleNamespace(workerinput={}, getvalue=lambda key: key == "loadgroup")
    marked = pytest.mark.xdist_group("slurm").mark

    def item(nodeid, mark=marked):
        return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: mark if name == "xdist_group" else None)

    assert ungrouped(worker, [item("t.py::a"), item("t.py::b@slurm"), item("t.py::c", None)]) == ["t.py::a"]
    assert ungrouped(SimpleNamespace(getvalue=lambda key: True), [item("t.py::a")]) == []  # the controller collects none
