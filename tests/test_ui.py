"""The MLflow UI link a sweep prints, opened in a real browser (headless Chromium, a fresh profile: what a first-time
user sees) against ``mlflow ui`` on loopback."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recorded")]  # the recorded sweep made once


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser, installed by the project's own script where it is missing (as root, as CI runs)."""
    if not shutil.which("chromium") and os.geteuid() != 0:
        pytest.skip("needs chromium: sudo bash tools/chromium.sh")
    out = subprocess.run(["bash", str(ROOT / "tools" / "chromium.sh")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _visible_text(html: str) -> list[str]:
    html = re.sub(r"<script.*?</script>|<style.*?</style>", "", html, flags=re.S)
    return [t.strip() for t in re.sub(r"<[^>]+>", "\n", html).splitlines() if t.strip()]


def test_the_printed_link_opens_a_table_of_the_sweep_and_its_points_named_by_their_values(tmp_path, chromium,
                                                                                          recorded_sweep):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    _, db, printed = recorded_sweep
    (link,) = set(re.findall(r"\[m9\] MLflow runs: (\S+)", printed))  # the same link at the start and the end

    port = _free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{db}",
                           "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=env,
                          stdout=open(tmp_path / "ui.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.log").read_text()[-2000:]
                time.sleep(0.5)
        url = link.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}")
        # --virtual-time-budget: the page's scripts and requests run to quiet before the DOM is dumped
        page = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               f"--user-data-dir={tmp_path}/profile", "--virtual-time-budget=30000", "--dump-dom",
                               url], capture_output=True, text=True, timeout=300)
        text = _visible_text(page.stdout)
        assert "Run Name" in text, text[:80]  # the runs table, not the GenAI traces overview
        table = text[text.index("Run Name"):]
        assert {"grid max_seqs=2,3,16 (sweep)", "max_seqs=2", "max_seqs=3", "max_seqs=16"} <= set(table), table[:40]
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(timeout=30)
