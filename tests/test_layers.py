"""The house's layering, checked rather than described: what each stage's modules import (read from their source,
every import statement, top-level or deferred), and what the launching process really loads."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, store_at

SRC = ROOT / "src"
ENGINE_LIBS = {"jax", "jaxlib", "levanter", "haliax", "equinox", "transformers"}
HYDRA_LIBS = {"hydra", "omegaconf", "hydra_plugins", "submitit"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in (SRC / "m9").rglob("*.py") if "conf" not in p.relative_to(SRC).parts[1:2]}


def _imports(module: str) -> set[str]:
    """Every module ``module`` names in an import statement (``from m9.x import y`` names ``m9.x.y`` when that is a
    module of m9, else ``m9.x``), with the packages above each."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def _closure(module: str) -> set[str]:
    """What importing ``module`` can ever bring in, following m9's own modules."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [m for m in _imports(current) if m in MODULES]
    return seen | {lib for m in seen for lib in _imports(m) if lib not in MODULES}


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


STAGES = ("config", "protocol", "inputs", "plan", "outcome", "run", "engine", "record", "report", "session", "point",
          "compose", "sweep", "__main__")
"""m9's stages, lowest first: one point's straight line (compose -> config -> plan -> run -> outcome -> record ->
report) with what it stands on (the protocol between processes, a point's inputs, the session a process keeps) and
what stands on it (the sweeps and the entry point). A module imports only from its own stage or one below it."""


def _stage(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "m9"


def _own(module: str) -> set[str]:
    """The m9 modules ``module`` imports, each as the deepest module it names (its packages' ``__init__`` aside)."""
    named = {m for m in _imports(module) if m in MODULES and m != module}
    return {m for m in named if not any(other.startswith(m + ".") for other in named)}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of ``graph`` (its nodes in order), or [] when it has none."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_every_module_belongs_to_a_stage():
    assert {_stage(m) for m in MODULES} <= {*STAGES, "m9"}, sorted({_stage(m) for m in MODULES} - {*STAGES, "m9"})


def test_stages_import_downward_only():
    upward = sorted((m, o) for m in MODULES for o in _own(m) if _stage(o) != "m9" and _stage(m) != "m9"
                    and STAGES.index(_stage(o)) > STAGES.index(_stage(m)))
    assert not upward, upward


def test_the_stage_graph_is_acyclic():
    graph: dict[str, set[str]] = {}
    for m in MODULES:
        graph.setdefault(_stage(m), set()).update(_stage(o) for o in _own(m) if _stage(o) != _stage(m))
    assert not _cycle(graph), _cycle(graph)


def test_no_modules_import_each_other():
    graph = {m: _own(m) for m in MODULES}
    assert not _cycle(graph), _cycle(graph)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_module_keeps_process_state_or_sets_the_environment_when_imported():
    """Process-wide state lives in the session the entry point makes (``m9.session``): no function rebinds a
    module's global, and no module changes ``os.environ`` as it is imported."""
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        rebinding = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Global)]
        assert not rebinding, (module, rebinding)
        top_level = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        environ = [n.lineno for s in top_level for n in ast.walk(s) if isinstance(n, ast.Attribute)
                   and n.attr == "environ"]
        assert not environ, (module, environ)


def test_only_the_tracking_package_imports_mlflow():
    importers = {m for m in MODULES if "mlflow" in _top(_imports(m))}
    assert importers and all(m.startswith("m9.record.tracking") for m in importers), sorted(importers)


def test_only_the_engine_adapter_imports_jax_and_levanter():
    importers = {m for m in MODULES if _top(_imports(m)) & ENGINE_LIBS}
    assert importers == {"m9.engine.mesh", "m9.engine.model", "m9.engine.process", "m9.engine.rounds"}, \
        sorted(importers)


def test_nothing_below_the_entry_point_sees_hydra():
    importers = {m for m in MODULES if _top(_imports(m)) & HYDRA_LIBS}
    # the command line's side: composing points, reading Hydra's sweep syntax (an optimisation's space), launching
    assert {_stage(m) for m in importers} <= {"__main__", "compose", "sweep"}, sorted(importers)
    assert importers >= {"m9.__main__", "m9.compose.command", "m9.compose.composer", "m9.compose.schema"}


def test_the_planner_imports_no_engine_tracking_or_jax():
    reach = set().union(*(_closure(m) for m in ("m9.plan", "m9.plan.capacity", "m9.plan.chips", "m9.plan.sizes")))
    assert {m for m in reach if m.startswith("m9.")} <= {"m9.plan", "m9.plan.capacity", "m9.plan.chips",
                                                         "m9.plan.sizes"} | {
        m for m in MODULES if m.startswith("m9.config")}, sorted(reach)
    assert not _top(reach) & (ENGINE_LIBS | HYDRA_LIBS | {"mlflow", "numpy"}), sorted(_top(reach))


def test_the_engine_imports_no_mlflow_or_hydra():
    reach = set().union(*(_closure(m) for m in MODULES if m.startswith("m9.engine")))
    assert not _top(reach) & (HYDRA_LIBS | {"mlflow"}), sorted(_top(reach))
    ours = {m for m in reach if m.startswith("m9.") and not m.startswith(("m9.engine", "m9.config"))}
    assert ours <= {"m9.run", "m9.protocol", "m9.run.files"}, sorted(ours)


@pytest.mark.parametrize("module", ["m9.config", "m9.protocol", "m9.run.files"])
def test_the_schema_and_the_protocol_are_standard_library_only(module):
    outside = {n for n in _top(_closure(module)) if n not in sys.stdlib_module_names and n != "m9"}
    assert not outside, sorted(outside)
    ours = {m for m in _closure(module) if m.startswith("m9.") and not m.startswith("m9.config")}
    assert ours <= {"m9.run", "m9.protocol", "m9.run.files"}, sorted(ours)


def _modules_loaded_by(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """Run ``python -m m9 ARGS`` in a fresh interpreter; the top-level modules it had loaded when it exited."""
    script = ("import atexit, json, sys, runpy\n"
              "atexit.register(lambda: print('LOADED ' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})),"
              " file=sys.stderr))\n"
              "sys.argv = ['m9', *json.loads(sys.argv[1])]\nrunpy.run_module('m9', run_name='__main__')")
    env = env or {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED "))
    return set(json.loads(line[len("LOADED "):])), proc.stdout + proc.stderr


def test_planning_a_point_loads_no_engine_and_no_tracking(tmp_path):
    loaded, out = _modules_loaded_by(["engine.max_seqs=1000000000", "scheduler.max_queued_tokens=1000000000",
                                      "tracking=none", f"hydra.run.dir={tmp_path}/r"], tmp_path)
    assert "REJECTED" in out and "Traceback" not in out, out[-3000:]
    assert not loaded & (ENGINE_LIBS | {"mlflow"}), sorted(loaded & (ENGINE_LIBS | {"mlflow"}))


@pytest.mark.slow
def test_the_launching_process_of_a_sweep_never_imports_jax(tmp_path):
    """A tracked sweep whose points run (and one the planner rejects): its engine children import JAX, it does not."""
    loaded, out = _modules_loaded_by(
        ["-m", "engine.max_seqs=2,3", "engine.max_pages=2", "engine.max_seq_len=64", "workload.prompt_len=8",
         "workload.max_new_tokens=8", "workload.n_rounds=1", f"tracking.uri={store_at(tmp_path)}",
         f"hydra.sweep.dir={tmp_path}/sweep"], tmp_path)
    assert "2 points, 1 pass, 0 fail, 1 rejected" in out, out[-3000:]
    assert "mlflow" in loaded and "hydra" in loaded  # it tracked and swept
    assert not loaded & ENGINE_LIBS, sorted(loaded & ENGINE_LIBS)
