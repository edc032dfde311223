"""CondaBackend against the local channel built in the test (tests/environments/condachannel.py):
resolve, build, reuse, concurrent builders, lock round trip, and each error by its message."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from headwater.config import DEFAULT_CONDA_CHANNELS, load_settings
from headwater.environments.base import (
    EnvKind,
    EnvRequest,
    IndexUnreachable,
    Lock,
    PackageNotFound,
    PythonUnavailable,
    StepEnvironmentError,
    Unsatisfiable,
)

pytest.importorskip("rattler")

from headwater.environments.conda import PACKAGE_CACHE_DIRNAME, CondaBackend, python_spec  # noqa: E402

from .condachannel import python_version  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def backend(tmp_path: Path) -> CondaBackend:
    return CondaBackend(load_settings({"HEADWATER_HOME": str(tmp_path / "home")}))


def request(channel: Path | str, *packages: tuple[str, str], python: str | None = None) -> EnvRequest:
    url = channel.as_uri() if isinstance(channel, Path) else channel
    return EnvRequest(kind=EnvKind.CONDA, python=python, packages=tuple(sorted(packages)), channels=(url,))


def run_in(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_two_majors_resolve_and_build_into_two_environments(backend, conda_channel, tmp_path):
    envs = tmp_path / "envs"
    versions = {}
    for spec in ("1.*", "2.*"):
        lock = backend.resolve(request(conda_channel, ("tinylib", spec), python="%d.%d" % sys.version_info[:2]))
        assert lock.kind is EnvKind.CONDA and lock.python == python_version()
        pinned = {p.name: p for p in lock.packages}
        assert set(pinned) == {"python", "tinylib"}
        assert pinned["tinylib"].url.startswith(conda_channel.as_uri()) and len(pinned["tinylib"].sha256) == 64
        built = backend.build(lock, envs)
        assert built.prefix == envs / lock.digest() and built.lock_digest == lock.digest()
        out = run_in(built.python, "import sys, tinylib; print(tinylib.__version__, sys.prefix)")
        assert out.returncode == 0, out.stderr
        versions[spec] = out.stdout.split()
        assert Path(versions[spec][1]) == built.prefix
    assert versions["1.*"][0] == "1.0" and versions["2.*"][0] == "2.0"


def test_environment_sees_none_of_the_launching_environments_packages(backend, conda_channel, tmp_path):
    built = backend.build(backend.resolve(request(conda_channel, ("tinylib", ""))), tmp_path / "envs")
    out = run_in(built.python, "import blake3")  # installed where the tests run, not in the environment
    assert out.returncode != 0 and "No module named 'blake3'" in out.stderr


def test_dependencies_are_solved_to_the_versions_they_need(backend, conda_channel):
    lock = backend.resolve(request(conda_channel, ("tinyapp", "")))
    assert {p.name: p.version for p in lock.packages} == {"python": python_version(), "tinyapp": "1.0",
                                                          "tinylib": "2.0"}


def test_python_defaults_to_the_launching_interpreters_minor_version(backend, conda_channel):
    assert python_spec(None) == "%d.%d.*" % sys.version_info[:2]
    assert backend.resolve(request(conda_channel, ("tinylib", "1.*"))).python == python_version()


@pytest.mark.parametrize("given, spec", [("3.11", "3.11.*"), ("3.11.7", "3.11.7"), (">=3.10", ">=3.10"),
                                         (" 3.12 ", "3.12.*")])
def test_python_spec(given, spec):
    assert python_spec(given) == spec


def test_build_twice_reuses_the_environment(backend, conda_channel, tmp_path):
    lock = backend.resolve(request(conda_channel, ("tinylib", "1.*")))
    first = backend.build(lock, tmp_path / "envs")
    marker = first.prefix / "lib"
    before = (first.prefix.stat().st_ino, marker.stat().st_ino, marker.stat().st_mtime_ns)
    assert sorted(p.name for p in (tmp_path / "envs").iterdir()) == sorted([lock.digest(), PACKAGE_CACHE_DIRNAME])
    shutil.rmtree(tmp_path / "envs" / PACKAGE_CACHE_DIRNAME)  # an install would fill it again
    second = backend.build(lock, tmp_path / "envs")
    assert second == first
    assert (second.prefix.stat().st_ino, marker.stat().st_ino, marker.stat().st_mtime_ns) == before
    assert [p.name for p in (tmp_path / "envs").iterdir()] == [lock.digest()]


def test_files_naming_their_prefix_name_the_final_one_not_the_build_directory(backend, conda_channel, tmp_path):
    built = backend.build(backend.resolve(request(conda_channel, ("tinyapp", ""))), tmp_path / "envs")
    assert (built.prefix / "etc" / "tinyapp" / "prefix.txt").read_text() == f"{built.prefix}\n"


def test_packages_are_hardlinked_from_the_package_cache(backend, conda_channel, tmp_path):
    built = backend.build(backend.resolve(request(conda_channel, ("tinylib", "2.*"))), tmp_path / "envs")
    module = built.prefix / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages" / "tinylib" / "__init__.py"
    cached = list((tmp_path / "envs" / PACKAGE_CACHE_DIRNAME).rglob("tinylib/__init__.py"))
    assert len(cached) == 1 and cached[0].stat().st_ino == module.stat().st_ino


BUILDER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from headwater.config import load_settings
    from headwater.environments.base import Lock
    from headwater.environments.conda import CondaBackend
    lock_file, cache_dir, go, home = sys.argv[1:]
    lock = Lock.from_json(json.loads(Path(lock_file).read_text()))
    backend = CondaBackend(load_settings({"HEADWATER_HOME": home}))
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.001)
    print(backend.build(lock, Path(cache_dir)).prefix)
""")


def test_concurrent_builders_make_one_environment(backend, conda_channel, tmp_path):
    lock = backend.resolve(request(conda_channel, ("tinyapp", "")))
    lock_file = tmp_path / "lock.json"
    lock_file.write_text(json.dumps(lock.to_json()))
    envs, go = tmp_path / "envs", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    args = [sys.executable, "-c", BUILDER, str(lock_file), str(envs), str(go), str(tmp_path / "home")]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(3)]
    assert [p.stdout.readline() for p in procs] == ["ready\n"] * 3  # all wait on `go`: they build at once
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert {out.strip() for out, _ in outs} == {str(envs / lock.digest())}
    assert sorted(p.name for p in envs.iterdir()) == sorted([lock.digest(), PACKAGE_CACHE_DIRNAME])
    out = run_in(backend.build(lock, envs).python, "import tinyapp, tinylib; print(tinylib.__version__)")
    assert out.stdout.strip() == "2.0", out.stderr


def test_lock_round_trips_through_json_and_builds_on_a_fresh_cache(backend, conda_channel, tmp_path):
    lock = backend.resolve(request(conda_channel, ("tinylib", "1.*")))
    again = Lock.from_json(json.loads(json.dumps(lock.to_json())))
    assert again == lock and again.digest() == lock.digest()
    fresh = CondaBackend(load_settings({"HEADWATER_HOME": str(tmp_path / "other-home")}))
    built = fresh.build(again, tmp_path / "fresh-envs")
    assert built.lock_digest == lock.digest()
    assert run_in(built.python, "import tinylib; print(tinylib.__version__)").stdout.strip() == "1.0"


def test_same_request_resolves_to_the_same_lock(backend, conda_channel):
    req = request(conda_channel, ("tinylib", "2.*"))
    assert backend.resolve(req).digest() == backend.resolve(req).digest()


def test_channels_come_from_the_settings_when_the_request_names_none(conda_channel, tmp_path):
    assert load_settings({}).conda_channels == DEFAULT_CONDA_CHANNELS == ("conda-forge",)
    settings = load_settings({"HEADWATER_HOME": str(tmp_path),
                              "HEADWATER_CONDA_CHANNELS": f" {conda_channel.as_uri()} , http://127.0.0.1:9/other"})
    assert settings.conda_channels == (conda_channel.as_uri(), "http://127.0.0.1:9/other")
    only_local = settings.with_(conda_channels=(conda_channel.as_uri(),))
    lock = CondaBackend(only_local).resolve(EnvRequest(kind=EnvKind.CONDA, packages=(("tinylib", "1.*"),)))
    assert {p.name: p.version for p in lock.packages}["tinylib"] == "1.0"


# ---------------------------------------------------------------- errors, each by its message


def test_missing_package_is_named_with_the_channels_tried(backend, conda_channel):
    with pytest.raises(PackageNotFound, match=r"'tinylibb' is not in the channels tried: file://.*channel") as info:
        backend.resolve(request(conda_channel, ("tinylibb", "")))
    assert "spelling" in info.value.hint


def test_a_version_no_channel_has_is_named_with_the_versions_there(backend, conda_channel):
    with pytest.raises(PackageNotFound, match=r"No version of conda package 'tinylib' matches 'tinylib 3\.\*'.*"
                                              r"They have: 1\.0, 2\.0"):
        backend.resolve(request(conda_channel, ("tinylib", "3.*")))


def test_unsolvable_pair_names_the_conflicting_requirements(backend, conda_channel):
    with pytest.raises(Unsatisfiable, match=r"(?s)tinyapp, tinylib 1\.\*\) cannot be installed together.*"
                                            r"tinyapp 1\.0 would require.*tinylib >=2"):
        backend.resolve(request(conda_channel, ("tinyapp", ""), ("tinylib", "1.*")))


def test_python_version_the_channels_lack(backend, conda_channel):
    have = re.escape(python_version())
    with pytest.raises(PythonUnavailable, match=rf"No Python matching 'python 2\.7\.\*'.*They have: {have}\."):
        backend.resolve(request(conda_channel, ("tinylib", ""), python="2.7"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_channel_is_named_by_url(backend, conda_channel):
    url = f"http://127.0.0.1:{_closed_port()}/nochannel"
    with pytest.raises(IndexUnreachable, match=rf"The conda channel {url} cannot be read"):
        backend.resolve(EnvRequest(kind=EnvKind.CONDA, packages=(("tinylib", ""),),
                                   channels=(conda_channel.as_uri(), url)))


def test_missing_local_channel_is_unreachable(backend, tmp_path):
    with pytest.raises(IndexUnreachable, match=r"nowhere cannot be read"):
        backend.resolve(request(tmp_path / "nowhere", ("tinylib", "")))


def test_lock_whose_channel_is_gone_fails_to_build_and_leaves_nothing_half_built(backend, conda_channel, tmp_path):
    channel = tmp_path / "channel"
    shutil.copytree(conda_channel, channel)
    lock = backend.resolve(request(channel, ("tinylib", "")))
    shutil.rmtree(channel)
    # Packages are fetched in parallel: whichever fails first is named.
    with pytest.raises(StepEnvironmentError, match=r"(?s)could not be installed:.*(python|tinylib)-.*\.conda"):
        backend.build(lock, tmp_path / "envs")
    assert [p.name for p in (tmp_path / "envs").iterdir()] == [PACKAGE_CACHE_DIRNAME]


def test_another_python_without_headwaters_packages_is_refused_early(tmp_path: Path) -> None:
    """A python= other than the launching one needs blake3 and zstandard in the environment
    (interpreter.shim_requirements); a channel without them is an error before any solve or build."""
    pytest.importorskip("rattler")
    pytest.importorskip("conda_package_handling")
    from headwater.config import load_settings
    from headwater.environments.base import EnvKind, EnvRequest
    from headwater.environments.conda import CondaBackend
    from headwater.environments.interpreter import ShimUnavailable

    from .condachannel import PackageSpec, build_channel, current_platform

    other = PackageSpec("python", "3.99.0", current_platform(), files={"pyvenv.cfg": "version = 3.99.0\n"})
    channel = build_channel(tmp_path / "conda", extra=(other,))
    backend = CondaBackend(load_settings({"HEADWATER_HOME": str(tmp_path / "home")}))
    request = EnvRequest(EnvKind.CONDA, python="3.99", packages=(("tinylib", "1.*"),), channels=(channel.as_uri(),))
    with pytest.raises(ShimUnavailable, match=r"asks for python 3\.99\.\*.*needs its own blake3, zstandard"):
        backend.resolve(request)
