"""The stacks m9 is tested on: ranges in the package's requirements, the exact versions of each stack in stacks/, and
the environment this suite runs in is one of them."""

from __future__ import annotations

import platform
import re
import subprocess
import tomllib
from importlib import metadata

from conftest import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIRES = [Requirement(r) for r in PROJECT["dependencies"]]


def _lock(path) -> dict[str, str]:
    pins = (line.split("==") for line in path.read_text().splitlines() if "==" in line and not line.startswith("#"))
    return {metadata_name(name): version for name, version in pins}


def metadata_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_are_ranges_that_hold_every_tested_stack():
    assert not [str(r) for r in REQUIRES if any(s.operator in ("==", "===") for s in r.specifier)]
    locks = sorted((ROOT / "stacks").glob("py3.*.txt"))
    assert [p.name for p in locks] == ["py3.11.txt", "py3.12.txt"]
    for lock in locks:
        python = lock.name.removeprefix("py").removesuffix(".txt")
        assert Version(f"{python}.0") in SpecifierSet(PROJECT["requires-python"]), lock.name
        pinned = _lock(lock)
        for req in REQUIRES:
            assert req.specifier.contains(pinned[metadata_name(req.name)], prereleases=True), (lock.name, str(req))
    assert _lock(locks[0])["marin-levanter"] == "0.2.20.dev202606180959"  # the experiment log's build
    assert Version(_lock(locks[1])["marin-levanter"]) >= Version("0.2.227.dev0")  # today's line


def test_this_environment_is_a_tested_stack_and_pip_would_keep_it():
    """What pip decides for an installed requirement: kept when its version is in range (no upgrade asked)."""
    installed = {metadata_name(r.name): metadata.version(r.name) for r in REQUIRES}
    assert not {n: v for n, v in installed.items() if not next(r for r in REQUIRES if metadata_name(r.name) == n)
                .specifier.contains(v, prereleases=True)}
    lock = _lock(ROOT / "stacks" / f"py{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}.txt")
    assert {n: lock[n] for n in installed} == installed  # installed as the stack's lock file says


def test_a_missing_python_is_named_in_one_line():
    ran = subprocess.run(["bash", str(ROOT / "stacks" / "python.sh"), "2.1"], capture_output=True, text=True)
    assert ran.returncode == 1 and ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and "no Python 2.1" in ran.stderr, ran.stderr
