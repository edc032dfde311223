"""Conda environments (``@conda``, ``@conda_base``, ``--environment=conda``), solved and installed
with rattler (py-rattler, the ``envs`` extra).

``resolve`` fetches the channels' repodata for this platform and ``noarch``, checks that every
requested package and the requested Python exist there (so a typo is named as such, not as a
conflict), then solves; the lock text is a rattler lock file (the format pixi writes) of the
solved records. ``build`` links the lock's packages from a package cache beside the environments
(hardlinks, one copy on disk) into a directory built aside and renamed into place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import Settings, load_settings
from .base import (
    BuiltEnv,
    EnvironmentBackend,
    EnvKind,
    EnvRequest,
    IndexUnreachable,
    Lock,
    LockedPackage,
    PackageNotFound,
    PythonUnavailable,
    StepEnvironmentError,
    Unsatisfiable,
)
from .aside import READY_MARKER, build_aside, discard, is_ready
from .interpreter import ShimUnavailable, shim_requirements
from .shim import install_pth

if TYPE_CHECKING:
    import rattler

T = TypeVar("T")

#: Directory under a build's ``cache_dir`` holding rattler's package cache (extracted packages,
#: hardlinked into every environment). Environment directories are lock digests, so no clash.
PACKAGE_CACHE_DIRNAME = "conda-pkgs"
#: The environment name inside the rattler lock file.
_LOCK_ENVIRONMENT = "default"
_INSTALL_HINT = "Install the conda support: pip install 'headwater[envs]' (it brings py-rattler)."


def _rattler() -> Any:
    """The rattler module, imported on first use (conda support is an optional extra)."""
    try:
        import rattler
        import rattler.exceptions  # noqa: F401  (a submodule the package does not import itself)
    except ImportError:
        raise StepEnvironmentError("Conda environments need py-rattler, which is not installed.",
                                   hint=_INSTALL_HINT) from None
    return rattler


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run one of rattler's coroutines to completion from synchronous code.

    A fresh event loop per call (``asyncio.run``); when this thread already runs a loop (a
    notebook), the coroutine runs on a worker thread's own loop instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def python_spec(python: str | None) -> str:
    """The conda version spec of a step's ``python=``: ``"3.11"`` -> ``"3.11.*"``.

    None means the launching interpreter's major.minor; a full version (``"3.11.7"``) is exact;
    anything else (``">=3.10"``) is passed to the solver as written.
    """
    if python is None:
        return "%d.%d.*" % sys.version_info[:2]
    python = python.strip()
    parts = python.split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return f"{python}.*"
    return python


def package_spec(name: str, version: str) -> str:
    """One requested package as a conda match spec (``"tinylib 1.*"``; any version when empty)."""
    return f"{name} {version}".strip()


def interpreter_of(prefix: Path) -> Path:
    """The Python interpreter of a conda environment at ``prefix``."""
    return prefix / "python.exe" if sys.platform == "win32" else prefix / "bin" / "python"


class CondaBackend(EnvironmentBackend):
    """Conda environments solved and installed by rattler.

    Parameters
    ----------
    settings : Settings, optional
        Where the channels come from when a request names none (``conda_channels``,
        HEADWATER_CONDA_CHANNELS) and where repodata is cached (``$HEADWATER_HOME/cache/conda``).
        Default: the process's settings.

    Examples
    --------
    >>> backend = CondaBackend()
    >>> lock = backend.resolve(EnvRequest(kind=EnvKind.CONDA, python="3.11",
    ...                                   packages=(("numpy", "1.26.*"),)))  # doctest: +SKIP
    >>> env = backend.build(lock, Path("~/.headwater/envs").expanduser())  # doctest: +SKIP
    >>> env.python  # doctest: +SKIP
    PosixPath('/home/me/.headwater/envs/9f2c.../bin/python')
    """

    kind = EnvKind.CONDA

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings if settings is not None else load_settings()

    @classmethod
    def from_settings(cls, settings: Settings) -> "CondaBackend":
        """The backend configured by ``settings`` (channels, caches): what ``prepare.backend_for`` calls."""
        return cls(settings)

    # ------------------------------------------------------------------ resolve
    def source_key(self, request: EnvRequest) -> dict[str, Any]:
        return {"channels": list(request.channels or self._settings.conda_channels)}

    def resolve(self, request: EnvRequest) -> Lock:
        """The lock of ``request``: every package pinned to one build of this platform.

        Raises
        ------
        IndexUnreachable
            A channel cannot be read (named by URL).
        PackageNotFound
            A requested package, or any version of it matching the request, is in none of the channels.
        PythonUnavailable
            No Python of the requested version is in the channels.
        Unsatisfiable
            The packages exist but cannot be installed together (rattler's explanation follows).
        """
        rattler = _rattler()
        channels = tuple(request.channels) or self._settings.conda_channels
        platform = str(rattler.Subdir.current())
        specs = [("python", f"python {python_spec(request.python)}")]
        specs += [(name, package_spec(name, version)) for name, version in request.packages]
        asked = [name for name, _ in request.packages]
        wanted = _exact_minor(request.python)
        shim = shim_requirements(wanted, asked) if wanted else []
        records = run_async(self._solve(rattler, channels, platform, specs, shim))
        python = next((str(r.version) for r in records if r.name.normalized == "python"), "")
        if not shim and python and shim_requirements(python, asked):  # a range (">=3.10") chose another Python
            shim = shim_requirements(python, asked)
            records = run_async(self._solve(rattler, channels, platform, specs, shim))
        return self._lock(rattler, records, channels, platform)

    async def _solve(self, rattler: Any, channels: Sequence[str], platform: str,
                     specs: list[tuple[str, str]], shim: Sequence[str] = ()) -> list["rattler.RepoDataRecord"]:
        matchspecs = [self._matchspec(rattler, text) for _, text in specs]
        subdirs = [platform, "noarch"]
        gateway = rattler.Gateway(cache_dir=Path(self._settings.home) / "cache" / "conda")
        urls = [_channel_url(rattler, c) for c in channels]
        found: dict[str, list[Any]] = {}
        for channel, url in zip(channels, urls):
            # one channel at a time, so an unreachable one is named exactly
            try:
                result = await gateway.query([channel], subdirs, [name for name, _ in specs] + list(shim),
                                             recursive=False)
            except rattler.exceptions.GatewayError as exc:
                raise IndexUnreachable(
                    f"The conda channel {url} cannot be read:\n{_indent(str(exc))}",
                    hint="Check the channel URL and the network, or set the channels with @conda(channels=...) "
                         "or HEADWATER_CONDA_CHANNELS.") from None
            for subdir_records in result:
                for record in subdir_records:
                    found.setdefault(record.name.normalized, []).append(record)
        _check_available(specs, matchspecs, found, urls, platform)
        _check_shim(specs, shim, found, urls, platform)
        matchspecs += [self._matchspec(rattler, name) for name in shim]
        try:
            return list(await rattler.solve(list(channels), matchspecs, gateway=gateway, platforms=subdirs,
                                            virtual_packages=rattler.VirtualPackage.detect()))
        except rattler.exceptions.SolverError as exc:
            asked = ", ".join(text for _, text in specs)
            raise Unsatisfiable(
                f"The conda packages requested ({asked}) cannot be installed together from "
                f"{', '.join(urls)}:\n{_indent(str(exc).strip())}",
                hint="Relax or change the versions named above so they agree.") from None

    @staticmethod
    def _matchspec(rattler: Any, text: str) -> Any:
        try:
            return rattler.MatchSpec(text)
        except rattler.exceptions.InvalidMatchSpecError as exc:
            raise StepEnvironmentError(
                f"{text!r} is not a valid conda requirement: {exc}.",
                hint="Give versions as conda writes them, e.g. packages={'numpy': '1.26.*'} or '>=1.26,<2'.") from None

    @staticmethod
    def _lock(rattler: Any, records: list[Any], channels: Sequence[str], platform: str) -> Lock:
        records = sorted(records, key=lambda r: r.name.normalized)
        lock_platform = rattler.LockPlatform(platform)
        lock_file = rattler.LockFile([lock_platform])
        lock_file.set_channels(_LOCK_ENVIRONMENT, [rattler.LockChannel(_channel_url(rattler, c)) for c in channels])
        for record in records:
            lock_file.add_conda_package(_LOCK_ENVIRONMENT, lock_platform, record)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "conda.lock"
            lock_file.to_path(path)
            text = path.read_text()
        packages = tuple(LockedPackage(name=r.name.normalized, version=str(r.version), url=r.url,
                                       sha256=r.sha256.hex() if r.sha256 else "") for r in records)
        python = next((p.version for p in packages if p.name == "python"), "")
        return Lock(kind=EnvKind.CONDA, python=python, platform=platform, packages=packages, text=text)

    # ------------------------------------------------------------------ build
    def build(self, lock: Lock, cache_dir: Path) -> BuiltEnv:
        """The environment of ``lock`` at ``cache_dir / lock.digest()``, installed if not there yet.

        Packages come from (and are added to) the package cache ``cache_dir / "conda-pkgs"`` and
        are hardlinked into the environment. The environment is installed into a temporary
        directory beside it, with its final path written into the files that embed their prefix,
        then renamed into place: a concurrent builder that loses the race drops its copy.
        """
        if lock.kind is not EnvKind.CONDA:
            raise ValueError(f"CondaBackend cannot build a {lock.kind.value} lock")
        rattler = _rattler()
        digest = lock.digest()
        cache_dir = Path(cache_dir)
        target = cache_dir.absolute() / digest
        if is_ready(target, READY_MARKER) and not os.path.isfile(interpreter_of(target)):
            discard(target)  # its interpreter is gone: build it again
        if not is_ready(target, READY_MARKER):
            self._install(rattler, lock, cache_dir, target)
        python = interpreter_of(target)
        if not os.path.lexists(python):
            raise StepEnvironmentError(
                f"The conda environment {target} has no Python interpreter ({python} is missing).",
                hint="Request python in the environment (@conda(python=...)), or delete the directory to rebuild it.")
        return BuiltEnv(lock_digest=digest, prefix=target, python=python)

    def _install(self, rattler: Any, lock: Lock, cache_dir: Path, target: Path) -> None:
        current = str(rattler.Subdir.current())
        if lock.platform != current:
            raise StepEnvironmentError(
                f"The conda lock was resolved for {lock.platform} and cannot be built on {current}.",
                hint="Resolve the environment on the platform that runs the step.")
        records = _lock_records(rattler, lock)

        def make(aside: Path) -> None:
            try:
                run_async(rattler.install(records, aside, cache_dir=cache_dir / PACKAGE_CACHE_DIRNAME,
                                          show_progress=False, alternative_target_prefix=target,
                                          platform=rattler.Subdir(lock.platform)))
            except (rattler.exceptions.InstallerError, rattler.exceptions.TransactionError,
                    rattler.exceptions.LinkError, rattler.exceptions.ExtractError, rattler.exceptions.IoError) as exc:
                raise StepEnvironmentError(
                    f"The conda environment {target.name[:12]} could not be installed:\n{_indent(str(exc))}",
                    hint="Check that the channels of the lock are reachable, then run again.") from None
            install_pth(aside, lock.python)  # headwater importable in the step (environments/shim.py)

        build_aside(target, READY_MARKER, make, marker_text=json.dumps(lock.to_json()))


def _channel_url(rattler: Any, channel: str) -> str:
    """A channel's URL as the user can check it (``conda-forge`` -> its https URL)."""
    try:
        return str(rattler.Channel(channel).base_url).rstrip("/")
    except Exception:  # rattler raises its own types for malformed names; show what was given
        return channel


def _indent(text: str) -> str:
    return "    " + text.strip().replace("\n", "\n    ")


def _check_available(specs: list[tuple[str, str]], matchspecs: list[Any], found: dict[str, list[Any]],
                     urls: list[str], platform: str) -> None:
    """Raise PythonUnavailable or PackageNotFound for a request the channels cannot serve at all."""
    tried = f"{', '.join(urls)} ({platform} and noarch)"
    missing = [name for name, _ in specs[1:] if not found.get(name.lower())]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise PackageNotFound(
            f"Conda package{'s' if len(missing) > 1 else ''} {names} "
            f"{'are' if len(missing) > 1 else 'is'} not in the channels tried: {tried}.",
            hint="Check the spelling, or add the channel that has it with @conda(channels=...) "
                 "or HEADWATER_CONDA_CHANNELS.")
    for (name, text), spec in zip(specs, matchspecs):
        records = found.get(name.lower(), [])
        if any(r.matches(spec) for r in records):
            continue
        versions = ", ".join(sorted({str(r.version) for r in records}, key=_version_key)) or "none"
        if name == "python":
            raise PythonUnavailable(
                f"No Python matching {text!r} is in the conda channels tried: {tried}. They have: {versions}.",
                hint="Ask for a Python version the channels have (@conda(python=...)), or add a channel that has it.")
        raise PackageNotFound(
            f"No version of conda package {name!r} matches {text!r} in the channels tried: {tried}. "
            f"They have: {versions}.",
            hint=f"Ask for a version of {name!r} the channels have, or add a channel that has it.")


def _check_shim(specs: list[tuple[str, str]], shim: Sequence[str], found: dict[str, list[Any]],
                urls: list[str], platform: str) -> None:
    """Raise ShimUnavailable when the channels lack what headwater needs under another Python."""
    missing = [name for name in shim if not found.get(name.lower())]
    if missing:
        python = specs[0][1]
        raise ShimUnavailable(
            f"The environment asks for {python} (not the launching Python {sys.version_info[0]}.{sys.version_info[1]}), "
            f"so headwater needs its own {', '.join(missing)} there, and the channels tried "
            f"({', '.join(urls)}; {platform} and noarch) do not have {'them' if len(missing) > 1 else 'it'}.",
            hint="Add a channel that has them (conda-forge does) with @conda(channels=...) or "
                 "HEADWATER_CONDA_CHANNELS, or leave python= out to use the launching Python.")


def _exact_minor(python: str | None) -> str | None:
    """The major.minor a conda ``python=`` pins (``"3.12"``, ``"3.12.1"``); None for a range."""
    if python is None:
        return "%d.%d" % sys.version_info[:2]
    parts = python.strip().split(".")
    return python.strip() if len(parts) >= 2 and all(p.isdigit() for p in parts) else None


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.replace("-", ".").split("."))


def _lock_records(rattler: Any, lock: Lock) -> list[Any]:
    """The solved records written in ``lock.text`` (a rattler lock file)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conda.lock"
        path.write_text(lock.text)
        try:
            lock_file = rattler.LockFile.from_path(path)
        except rattler.exceptions.ParseCondaLockError as exc:
            raise StepEnvironmentError(f"The conda lock cannot be read: {exc}",
                                       hint="Resolve the environment again.") from None
    environment = lock_file.environment(_LOCK_ENVIRONMENT)
    records = environment.conda_repodata_records().get(lock.platform) if environment is not None else None
    if not records:
        raise StepEnvironmentError(f"The conda lock has no packages for {lock.platform}.",
                                   hint="Resolve the environment again.")
    return list(records)
