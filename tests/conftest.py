"""Shared fixtures: the real conf/ tree composed through Hydra's compose API."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from m9.compose import from_hydra, register_schema
from m9.config import M9Config
from m9.inputs import checkpoint

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

register_schema()

# One XLA compilation cache for the run, inherited by every engine child (JAX reads it from the environment): the
# suite's fresh children compile the same tiny shapes again and again. A hit still counts as a compilation in m9's
# metrics (JAX emits its compile event either way), and the executables are the ones XLA built.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _xla_cache = tempfile.mkdtemp(prefix="m9-tests-xla-cache-")
    atexit.register(shutil.rmtree, _xla_cache, ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=_xla_cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def compose_m9(overrides: list[str] | None = None) -> M9Config:
    """Compose the real config tree with overrides and convert it to the typed schema."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides or [])
    return checkpoint.resolve(from_hydra(cfg))


@functools.cache
def _empty_store() -> Path:
    from mlflow.tracking import MlflowClient

    where = Path(tempfile.mkdtemp(prefix="m9-tests-store-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    MlflowClient(tracking_uri=f"sqlite:///{where}/mlflow.db").search_experiments()  # MLflow migrates the schema
    return where / "mlflow.db"


def store_at(where: Path) -> str:
    """The URI of an empty sqlite MLflow store at ``where/mlflow.db``: a copy of one whose schema MLflow made once in
    this test process (its migrations cost ~4 s of CPU a store). A store already there is left as it is (a command
    run again records into what the first run left). The tests of creating a store (``m9 sync`` into a new one,
    ``stacks/check.sh``, the benchmark) name a path of their own."""
    if not (where / "mlflow.db").exists():
        shutil.copyfile(_empty_store(), where / "mlflow.db")
    return f"sqlite:///{where}/mlflow.db"


TINY_MAX_SEQ_LEN = 128


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny random Llama, built once for every in-process engine test (``engine.max_seq_len=128``)."""
    from m9.engine.model import build_model

    return build_model(compose_m9().model, TINY_MAX_SEQ_LEN, "float32")


def no_engine(monkeypatch) -> None:
    """Fail the test if an engine worker is started: ``spawn`` patched where it is called (``m9.run.trial`` and
    ``m9.run.workers`` call it as ``child.spawn``); ``test_trial`` shows the guard fires."""
    monkeypatch.setattr("m9.run.child.spawn", lambda *a, **k: pytest.fail("an engine child was started"))


def no_prompts(monkeypatch) -> None:
    """Fail the test if a point's prompts are built (``Prompts.build``, patched where it is called: on the class
    every caller's instance reads it from); ``test_plan`` shows the guard fires."""
    monkeypatch.setattr("m9.inputs.prompts.Prompts.build", lambda self, cfg: pytest.fail("the prompts were built"))


def _slurm_up() -> bool:
    import shutil
    import subprocess

    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    return "UP" in ping.stdout and subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def slurm() -> str:
    """A local single-node SLURM with accounting, started once for every test that needs it by the project's own
    script (as CI does); the partition name. Skipped where it cannot be started (not root, not Debian)."""
    import os
    import subprocess

    if not _slurm_up():
        if os.geteuid() != 0:
            pytest.skip("needs a local SLURM: sudo bash launchers/slurm/start.sh")
        subprocess.run(["bash", str(ROOT / "launchers" / "slurm" / "start.sh")], check=True, timeout=900)
    return "debug"


@pytest.fixture(scope="session")
def recorded_sweep(tmp_path_factory):
    """A real 3-point sweep of the tiny model recorded to a sqlite store (two points pass, one the planner refuses),
    shared by the tests that read it back (m9 sync, the UI in a browser); they must not change it.
    Returns (sweep folder, store file, the sweep's stdout)."""
    import os
    import subprocess
    import sys

    where = tmp_path_factory.mktemp("recorded")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ran = subprocess.run([sys.executable, "-m", "m9", "-m", "engine.max_seqs=2,3,16", "engine.max_pages=14",
                          "engine.max_seq_len=64", "workload.prompt_len=8", "workload.max_new_tokens=8",
                          "workload.n_rounds=1", f"tracking.uri={store_at(where)}",
                          f"hydra.sweep.dir={where}/sweep"], cwd=where, env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0 and "3 points, 2 pass, 0 fail, 1 rejected" in ran.stdout, ran.stderr[-3000:]
    return where / "sweep", where / "mlflow.db", ran.stdout


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: a test process per core (four at most), and one more for the SLURM tests, which run one at a
    time in one process and spend most of it waiting on SLURM's own clocks (a time limit, a heartbeat)."""
    return min(os.cpu_count() or 1, 4) + 1


def _group(item) -> str | None:
    marker = item.get_closest_marker("xdist_group")
    return marker.args[0] if marker else None


def ungrouped(config, items) -> list[str]:
    """The grouped tests a worker of ``--dist loadgroup`` collected without their group: xdist groups a test by
    renaming it ``<id>@<group>``, which some pytest releases ignore (9.2 with xdist 3.8), and then a group's tests
    spread over every worker: SLURM tests queue behind each other on the one node and time out."""
    if not (hasattr(config, "workerinput") and config.getvalue("loadgroup")):
        return []
    return [item.nodeid for item in items if _group(item) and not item.nodeid.endswith(f"@{_group(item)}")]


@pytest.hookimpl(trylast=True)  # after xdist's own hook has named each test's group
def pytest_collection_modifyitems(config, items):
    """The SLURM tests first: they run one at a time in one test process (``xdist_group``) and wait on SLURM's own
    clocks, so started first they overlap the rest of the suite instead of trailing it."""
    if lost := ungrouped(config, items):  # a worker's errors in collection hooks reach no one's terminal: fail tests
        config.stash[UNGROUPED] = (f"xdist_group is not in effect with pytest {pytest.__version__}: {lost[0]} "
                                   "runs in any worker; install the test extra's pytest")
    items.sort(key=lambda item: _group(item) != "slurm")


UNGROUPED = pytest.StashKey[str]()


def pytest_runtest_setup(item):
    if UNGROUPED in item.config.stash:
        item.session.shouldstop = item.config.stash[UNGROUPED]
        pytest.fail(item.config.stash[UNGROUPED], pytrace=False)
