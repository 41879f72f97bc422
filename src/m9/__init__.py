"""m9: capacity and throughput sweeps for paged-KV LLM inference engines."""

from pathlib import Path

# m9's config tree and cluster profiles ship inside the package (``m9/conf``, ``m9/launchers``: in a checkout,
# links to the repository's top-level ``conf/`` and ``launchers/``, where users read and edit them), so a wheel
# installed on a cluster node finds them without a checkout.
CONF_DIR = (Path(__file__).parent / "conf").resolve()
CONF_PACKAGE = "pkg://m9.conf"
"""The config tree as Hydra's entry point names it (``conf/__init__.py`` makes it a package)."""
LAUNCHERS_DIR = (Path(__file__).parent / "launchers").resolve()
