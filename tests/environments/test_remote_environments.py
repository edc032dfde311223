"""What travels to a remote machine with a step's environment, and its build there (once per machine).

End to end on a Ray cluster and through Kubernetes pods: tests/runtime/test_ray_launcher.py and
tests/runtime/test_kubernetes_launcher.py (``-k environment``).
"""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path

import pytest

from headwater.config import load_settings
from headwater.environments import remote
from headwater.environments.base import EnvKind, EnvRequest, StepEnvironmentError
from headwater.environments.prepare import resolve_steps
from headwater.store import Datastore


@pytest.fixture
def settings(offline_env: dict[str, str], tmp_path: Path):
    """Offline settings whose environments are built under a fresh HEADWATER_HOME."""
    return load_settings({**offline_env, "HEADWATER_HOME": str(tmp_path / "home"),
                          "HEADWATER_DATASTORE_ROOT": str(tmp_path / "store")})


@pytest.fixture
def stored(settings, tmp_path: Path):
    """The lock of @pypi(tinylib==1.*) stored in a datastore: (content store, key, lock)."""
    lock = resolve_steps({"start": EnvRequest(EnvKind.PYPI, packages=(("tinylib", "1.*"),))}, settings)["start"]
    content = Datastore(str(tmp_path / "store")).content
    return content, remote.store_lock(content, lock), lock


def test_the_head_package_sources_win_on_the_machine(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    index = remote.index_environ(settings)
    assert index == {"HEADWATER_PYPI_FIND_LINKS": ",".join(settings.pypi_find_links), "HEADWATER_PYPI_NO_INDEX": "1"}
    monkeypatch.setenv("HEADWATER_PYPI_FIND_LINKS", "/the/node/own/wheels")
    monkeypatch.setenv("HEADWATER_PYPI_INDEX_URL", "http://node-index.invalid/simple")
    there = remote.settings_with_index(index)
    assert there.pypi_find_links == settings.pypi_find_links and there.pypi_no_index
    assert there.pypi_index_url is None  # the head named no index URL: the node's is not used either
    assert remote.index_environ(load_settings({"HEADWATER_CONDA_CHANNELS": "file:///chan"})) == {
        "HEADWATER_CONDA_CHANNELS": "file:///chan"}


def test_a_lock_is_stored_once_and_read_back(stored) -> None:
    content, key, lock = stored
    assert remote.store_lock(content, lock) == key  # the same lock, the same object
    assert remote.load_lock(content, key) == lock
    with pytest.raises(StepEnvironmentError, match=r"The environment lock 0{12} is not in the datastore"):
        remote.load_lock(content, "0" * 64)


def test_a_lock_for_another_platform_is_refused(stored) -> None:
    _, _, lock = stored
    other = dataclasses.replace(lock, platform="darwin-arm64")
    with pytest.raises(StepEnvironmentError, match=r"resolved for darwin-arm64, but node X is linux"):
        remote.check_platform(other, "node X")


def test_concurrent_tasks_of_one_machine_build_once(stored, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    content, key, lock = stored
    monkeypatch.setattr(remote, "_built", {})
    logs = [io.StringIO() for _ in range(3)]
    envs: list = []

    def task(log: io.StringIO) -> None:
        envs.append(remote.build_here(content, key, settings, where="node X", log=log))

    threads = [threading.Thread(target=task, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    said = [log.getvalue() for log in logs if log.getvalue()]
    assert len(said) == 1 and f"Built the pypi environment {lock.digest()[:12]} (tinylib 1.0.0)" in said[0]
    assert "on node X" in said[0]
    assert {e.python for e in envs} == {str(settings.envs_dir / lock.digest() / "bin" / "python")}
    assert envs[0].packages == {"tinylib": "1.0.0"}
    monkeypatch.setattr(remote, "_built", {})  # another process of the machine: finds it, builds nothing
    again = io.StringIO()
    assert remote.build_here(content, key, settings, log=again) == envs[0] and again.getvalue() == ""
