"""A real sweep with passing, failing and rejected points, then `m9 report` against its MLflow store."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys

import pytest
from conftest import store_at

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report")]  # its module's sweep made once

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CASES = {  # 17 pages per sequence at the defaults (16 + 32 new tokens, 16-token pages -> ceil(48/16) = 3)
    "s2": "engine:\n  max_seqs: 2\n",
    "s4": "engine:\n  max_seqs: 4\n",
    # 6 sequences need 18 pages; 14 are given and the planner is overruled: out of pages for real
    "s6": "engine:\n  max_seqs: 6\n  max_pages: 14\ntrial:\n  enforce_plan: false\n",
    "s8": "engine:\n  max_seqs: 8\n  max_pages: 14\n",  # rejected: est. 24 pages needed
}


def _env():
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _sweep(tmp_path, name, extra=()):
    conf = tmp_path / "conf" / "case"
    conf.mkdir(parents=True, exist_ok=True)
    for case, body in CASES.items():
        (conf / f"{case}.yaml").write_text("# @package _global_\n" + body)
    proc = subprocess.run(
        [sys.executable, "-m", "m9", "-m", "-cd", str(tmp_path / "conf"), f"+case={','.join(CASES)}",
         "workload.max_new_tokens=32", "workload.n_rounds=1", f"tracking.uri={store_at(tmp_path)}",
         f"hydra.sweep.dir={tmp_path}/{name}", *extra],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _report(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "m9", "report", "--uri", f"sqlite:///{tmp_path}/mlflow.db", *args],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)


def _rows(markdown: str) -> dict[str, list[str]]:
    section = markdown.split("## Experiment matrix")[1].split("## Boundary")[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if re.match(r"\| \d+ \|", line)]
    return {r[0]: r for r in rows}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """sweep_a, recorded in ``mlflow.db`` beside it: a CPU with a bandwidth the user sets; two rounds, so the
    roofline's decode time holds no compilation. The report test moves the folder away (the store stays)."""
    where = tmp_path_factory.mktemp("report")
    _sweep(where, "sweep_a", extra=("accelerator.bandwidth_gbps=20", "workload.n_rounds=2"))
    return where


def test_report_matches_the_store_and_draws_valid_plots(swept):
    from mlflow.tracking import MlflowClient

    tmp_path = swept
    proc = _report(tmp_path)  # no argument: the latest sweep in the store
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "sweep_a" / "report.md").read_text()
    assert md in proc.stdout

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("m9")
    (parent,) = client.search_runs([exp.experiment_id], "tags.kind = 'sweep'")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4 and parent.info.status == "FINISHED"
    rows = _rows(md)
    assert set(rows) == {c.data.tags["job_num"] for c in children}
    for run in children:
        row, tags, metrics = rows[run.data.tags["job_num"]], run.data.tags, run.data.metrics
        assert row[2] == run.data.params["engine.max_seqs"] and row[4] == run.data.params["engine.max_pages"]
        assert row[3] == run.data.params["resolved.mesh"] == "1x1"
        assert row[6] == run.data.params["resolved.prompt_tokens"] == "16"
        expected = {"pass": "PASS", "rejected": "REJECTED"}.get(tags["status"], f"FAIL ({tags.get('failure_kind')})")
        assert row[7] == expected
        if tags["status"] == "pass":
            assert row[8] == f"{metrics['round_total_s']:.3f}s" and row[9] == f"{metrics['round_avg_tok_s']:.1f}"
            assert f"pages_in_use={int(metrics['pages_in_use'])}" in row[10]
            assert metrics["roofline_frac"] == pytest.approx(metrics["achieved_gbps"] / 20)
            assert f"roofline {metrics['roofline_frac']:.3g} of 20 GB/s, {metrics['arith_intensity']:.1f} FLOP/B" in row[10]
            assert f"| {metrics['roofline_frac']:.3g} | {metrics['arith_intensity']:.2f} |" in md.split("## Roofline")[1]
        else:
            assert tags["signature"][:40] in row[10]
    statuses = {r[2]: r[7] for r in rows.values()}
    assert statuses == {"2": "PASS", "4": "PASS", "6": "FAIL (out_of_pages)", "8": "REJECTED"}
    boundary = md.split("## Boundary")[1].split("\n- ")[1].splitlines()[0]
    assert boundary.startswith("stable through engine.max_seqs=4; engine.max_seqs=6+ fails at runtime "
                               "(1 out_of_pages; signature: ")
    assert "Out of free pages during allocation" in boundary
    assert "engine.max_seqs=8 is rejected by the planner (engine.max_pages=14 is too small" in boundary
    assert parent.data.tags["boundary"] == boundary and parent.data.metrics["ceiling"] == 4
    assert parent.data.tags["first_failure"] == "engine.max_seqs=6"
    for png in ("throughput.png", "pages.png"):
        data = (tmp_path / "sweep_a" / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000
        import matplotlib.image

        height, width, _ = matplotlib.image.imread(tmp_path / "sweep_a" / png).shape
        assert width >= 800 and height >= 450
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "throughput.png", "pages.png", "grid.json"} <= artifacts

    # Without the sweep directory, the same report comes from the store alone (entries rebuilt from the runs).
    (tmp_path / "sweep_a").rename(tmp_path / "moved")
    proc = _report(tmp_path, "sweep_a", "--out", str(tmp_path / "from_store"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    from_store = (tmp_path / "from_store" / "report.md").read_text()
    assert _rows(from_store) == rows
    assert from_store.split("## Boundary")[1] == md.split("## Boundary")[1]


def test_compare_two_sweeps_side_by_side(tmp_path, swept):
    shutil.copy(swept / "mlflow.db", tmp_path / "mlflow.db")  # sweep_a's store, and a second sweep beside it
    _sweep(tmp_path, "sweep_b", extra=("workload.max_new_tokens=48",))
    proc = _report(tmp_path, "--compare", "sweep_a", "sweep_b", "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "# m9 compare: A sweep_a vs B sweep_b" in md
    assert re.search(r"\| 2 \| PASS \| [\d.]+ \| \d+/\d+ \| PASS \| [\d.]+ \| \d+/\d+ \| [\d.]+ \|", md)
    assert re.search(r"\| 6 \| FAIL \(out_of_pages\) \| - \| [\d/]+ \| FAIL \(out_of_pages\) \| - \| [\d/]+ \| - \|", md)
    assert f"Both sweeps ran on the same stack: python {platform.python_version()}, levanter " in md
    assert "From A to B (the same stack): the ceiling stayed at engine.max_seqs=" in md
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == PNG_MAGIC
