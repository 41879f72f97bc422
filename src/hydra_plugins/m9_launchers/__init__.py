"""Puts m9's ``launchers/`` folder on m9's config search path, so ``hydra/launcher=slurm`` finds the
cluster profiles kept there. It touches only m9's own app (the one whose primary config is m9's ``conf/``)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from m9 import CONF_DIR, CONF_PACKAGE, LAUNCHERS_DIR


class M9LaunchersSearchPath(SearchPathPlugin):
    """Appends ``launchers/`` when the primary config directory is m9's."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        ours = any(e.path == CONF_PACKAGE or (e.path and "://" not in e.path and Path(e.path).resolve() == CONF_DIR)
                   for e in search_path.get_path())
        if ours and LAUNCHERS_DIR.is_dir():
            search_path.append(provider="m9-launchers", path=f"file://{LAUNCHERS_DIR}")
