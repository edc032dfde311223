"""The plugin listing is cached on disk: a second process lists plugins without importing
importlib.metadata, and installing a package on the path is noticed at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

_PROBE = ("import sys; from headwater.plugins import PluginKind, plugin_names; "
          "names = plugin_names(PluginKind.STEP_DECORATOR); "
          "print(names, 'importlib.metadata' in sys.modules)")


def _probe(home: Path, *extra_path: Path) -> str:
    env = {**os.environ, "HEADWATER_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([*map(str, extra_path), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_second_listing_comes_from_the_cache(tmp_path, plugin_site):
    home = tmp_path / "home"
    assert _probe(home, plugin_site) == "['stamp', 'timed'] True"  # listed, then cached
    assert _probe(home, plugin_site) == "['stamp', 'timed'] False"  # from the cache
    doc = json.loads((home / "plugins.json").read_text())
    assert len(doc["listings"]) == 1


def test_installing_a_package_on_the_path_invalidates_the_cache(tmp_path, plugin_site):
    home, site = tmp_path / "home", tmp_path / "site"
    site.mkdir()
    assert _probe(home, site) == "[] True"
    assert _probe(home, site) == "[] False"
    for entry in plugin_site.iterdir():  # "pip install" into a directory already on the path
        (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, site / entry.name)
    assert _probe(home, site) == "['stamp', 'timed'] True"
    assert _probe(home, site) == "['stamp', 'timed'] False"
