"""The contract every EnvironmentBackend keeps: resolve -> build -> an interpreter with the locked
packages; builds are idempotent and safe to race. A backend joins by adding one entry to
``BACKENDS``: a factory ``(request fixture) -> Case``."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from headwater.environments.base import BuiltEnv, EnvironmentBackend, EnvKind, EnvRequest, Lock


@dataclass(frozen=True)
class Case:
    """A backend with a request for ``tinylib`` 1.x it can satisfy offline."""

    backend: EnvironmentBackend
    request: EnvRequest
    version: str  # what the lock must pin tinylib to


def _pypi(request: pytest.FixtureRequest) -> Case:
    from headwater.environments.pypi import PypiBackend
    from headwater.environments.uvtool import IndexConfig

    links = request.getfixturevalue("find_links")
    backend = PypiBackend(IndexConfig(find_links=(str(links),), no_index=True))
    return Case(backend, EnvRequest(EnvKind.PYPI, packages=(("tinylib", "1.*"),)), "1.0.0")


def _conda(request: pytest.FixtureRequest) -> Case:
    from headwater.config import load_settings
    from headwater.environments.conda import CondaBackend

    channel = request.getfixturevalue("conda_channel")
    home = request.getfixturevalue("tmp_path") / "conda-home"
    backend = CondaBackend(load_settings({"HEADWATER_HOME": str(home)}))
    return Case(backend, EnvRequest(EnvKind.CONDA, packages=(("tinylib", "1.*"),), channels=(channel.as_uri(),)),
                "1.0")


#: name -> factory: a new backend joins the contract with one line.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Case]] = {"pypi": _pypi, "conda": _conda}


@pytest.fixture(params=sorted(BACKENDS))
def case(request: pytest.FixtureRequest) -> Case:
    return BACKENDS[request.param](request)


def _imported_version(env: BuiltEnv) -> str:
    out = subprocess.run([str(env.python), "-c", "import tinylib; print(tinylib.__version__)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_resolve_pins_the_package(case: Case) -> None:
    lock = case.backend.resolve(case.request)
    assert lock.kind is case.request.kind
    assert {p.name: p.version for p in lock.packages}["tinylib"] == case.version
    assert lock.digest() == case.backend.resolve(case.request).digest()  # resolving again locks the same


def test_the_built_interpreter_imports_the_locked_version(case: Case, tmp_path: Path) -> None:
    lock = case.backend.resolve(case.request)
    env = case.backend.build(lock, tmp_path)
    assert env.lock_digest == lock.digest() and env.prefix == tmp_path.absolute() / lock.digest()
    assert _imported_version(env) == case.version


def _one_environment_no_leftovers(cache_dir: Path, lock: Lock) -> None:
    """The environment is there and nothing a build makes aside is left (a backend may keep its
    package cache beside the environments, e.g. conda-pkgs)."""
    names = [p.name for p in cache_dir.iterdir()]
    assert lock.digest() in names
    left = [n for n in names if n != lock.digest() and (n.startswith(".") or n.endswith((".tmp", ".building")))]
    assert not left and sum(len(n) == len(lock.digest()) for n in names) == 1, names


def test_building_twice_reuses_the_environment(case: Case, tmp_path: Path) -> None:
    lock = case.backend.resolve(case.request)
    first = case.backend.build(lock, tmp_path)
    inode = os.stat(first.prefix).st_ino
    second = case.backend.build(lock, tmp_path)
    assert second == first and os.stat(second.prefix).st_ino == inode
    _one_environment_no_leftovers(tmp_path, lock)


def test_concurrent_builds_leave_one_environment(case: Case, tmp_path: Path) -> None:
    lock = case.backend.resolve(case.request)
    results: list[BuiltEnv] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(case.backend.build(lock, tmp_path))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    _one_environment_no_leftovers(tmp_path, lock)  # no half-built leftovers
    assert _imported_version(results[0]) == case.version



def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_a_dead_builders_aside_directory_is_removed(case: Case, tmp_path: Path) -> None:
    from headwater.environments.aside import aside_path

    lock = case.backend.resolve(case.request)
    stale = aside_path(tmp_path.absolute() / lock.digest(), pid=_dead_pid())
    (stale / "lib").mkdir(parents=True)
    live = aside_path(tmp_path.absolute() / "other", pid=os.getppid())  # a live builder's: kept
    live.mkdir()
    case.backend.build(lock, tmp_path)
    assert not stale.exists()
    assert live.exists()


def test_an_environment_whose_interpreter_is_gone_is_rebuilt(case: Case, tmp_path: Path) -> None:
    lock = case.backend.resolve(case.request)
    env = case.backend.build(lock, tmp_path)
    env.python.unlink()
    again = case.backend.build(lock, tmp_path)
    assert again.python.exists()
    assert _imported_version(again) == case.version
    _one_environment_no_leftovers(tmp_path, lock)
