"""The docs a newcomer reads: a short README with the two set-up commands (the second is what CI runs), and the
reference as a site that builds with MkDocs, strictly (a broken page, link or anchor fails), with no network."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def _commands() -> list[str]:
    setup = ROOT.joinpath("README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_the_readme_is_short_and_its_test_command_is_what_ci_runs():
    readme = ROOT.joinpath("README.md").read_text()
    assert len(readme.encode()) < 8 * 1024
    install_and_run, install_and_test = _commands()
    assert install_and_run.endswith("python -m m9 -m engine.max_seqs=2,4,8") and "pip install -e ." in install_and_run
    assert install_and_test.endswith("python -m pytest")
    assert install_and_test in ROOT.joinpath(".ci", "run").read_text()


def test_the_docs_build_strictly_offline(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pages = {p.stem for p in site.glob("*.html")}  # the offline plugin: a file per page, opened from the disk
    assert {"architecture", "running", "boundary", "optimize", "mlflow", "clusters"} <= pages, sorted(pages)
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()  # nothing fetched when it is opened
