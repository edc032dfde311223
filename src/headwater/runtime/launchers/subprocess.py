"""The subprocess launcher: one fresh interpreter per task (``python flow.py step ...``).

For platforms without fork and for steps that need another interpreter: a step with a built
environment (``@pypi``, ``--environment=uv``) runs with that environment's interpreter, with
the headwater shim named in its environment (``environments.shim``) and the environment
recorded in the task's metadata. Selected with ``HEADWATER_LAUNCHER=subprocess``, or by the
routing for the steps that have an environment. The ``step`` command runs the
same ``execute`` and writes the TaskResult as JSON to ``--result-file``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

from ..owner import process_token
from ..taskspec import TaskResult, TaskSpec
from .admission import LocalMachine
from .base import Finished, Launcher, TaskContext


def die_with_parent() -> Callable[[], None] | None:
    """On Linux, a task process gets SIGKILL when the run process dies (kill -9 included)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arm


#: Variables of the launching process that would put its packages or interpreter before a step
#: environment's own (the shim gives the step headwater and its dependencies).
_LEAKING_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONUSERBASE")


def isolated_environ(environ: dict[str, str], python: str, shim: str | None) -> dict[str, str]:
    """The environment variables of a task running with a built environment's ``python``.

    Nothing of the launching environment's packages: no ``PYTHONPATH`` (or ``PYTHONHOME``), no
    user site-packages (``PYTHONNOUSERSITE``); the environment's ``bin`` first on ``PATH`` (so a
    step that runs ``python`` or a console script gets the environment's); headwater comes from
    the shim (``environments.shim``).
    """
    from ...environments.shim import SHIM_ENV_VAR

    env = {k: v for k, v in environ.items() if k not in _LEAKING_VARS}
    bin_dir = os.path.dirname(python)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in environ.get("PATH", "").split(os.pathsep) if p)])
    env["PYTHONNOUSERSITE"] = "1"
    env["VIRTUAL_ENV"] = os.path.dirname(bin_dir)
    if shim:
        env[SHIM_ENV_VAR] = shim
    return env


class SubprocessLauncher(Launcher):
    name = "subprocess"

    def __init__(self, ctx: TaskContext) -> None:
        super().__init__(ctx)
        self.admission = LocalMachine.from_description(ctx.machine)
        self.procs: dict[str, tuple[subprocess.Popen, int, str]] = {}
        self._tmp = tempfile.mkdtemp(prefix="headwater-results-")
        self._owner = process_token()
        envs = ctx.environments
        self._envs = dict(envs.steps) if envs is not None else {}
        self._shim = envs.shim if envs is not None else None

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        # One interpreter per attempt. PR_SET_PDEATHSIG kills it when the thread that started it
        # dies; the owner token covers the rest (e.g. a task already past that signal's reach):
        # it commits only while this run process lives.
        spec = dataclasses.replace(spec, dedicated_process=True, run_owner=self._owner)
        python = sys.executable
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        flags = ["-u"]
        step_env = self._envs.get(spec.step_name)
        if step_env is not None:
            from ...environments.prepare import METADATA_KEY

            python = step_env.python
            env = isolated_environ(env, python, self._shim)
            flags = ["-s", "-u"]  # -s: no user site-packages either
            spec = dataclasses.replace(spec, extra=spec.extra + ((METADATA_KEY, step_env.metadata()),))
        safe = spec.key.replace("/", "_")
        spec_path = os.path.join(self._tmp, f"{safe}.{spec.attempt}.spec.json")
        result_path = os.path.join(self._tmp, f"{safe}.{spec.attempt}.result.json")
        with open(spec_path, "w") as f:
            f.write(spec.to_json())
        cmd = [python, *flags, self.ctx.script, "--quiet",
               "--datastore-root", spec.datastore_root,
               "step", spec.step_name, "--task-spec", spec_path, "--result-file", result_path]
        with open(stdout_path, "ab") as out, open(stderr_path, "ab") as err:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                 preexec_fn=die_with_parent(), start_new_session=True)
        self.procs[spec.key] = (p, spec.attempt, result_path)
        return p.pid

    def poll(self, timeout: float) -> list[Finished]:
        deadline = time.monotonic() + timeout
        while True:
            out = []
            for key, (p, attempt, result_path) in list(self.procs.items()):
                code = p.poll()
                if code is None:
                    continue
                del self.procs[key]
                result = None
                try:
                    with open(result_path) as f:
                        result = TaskResult.from_json(f.read())
                    os.unlink(result_path)
                except (OSError, ValueError):
                    pass
                out.append(Finished(key, attempt, result, code))
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))

    def kill(self, task_key: str) -> None:
        entry = self.procs.get(task_key)
        if entry is not None:
            from .forkpool import kill_task_tree  # the task leads its own session and group

            kill_task_tree(entry[0].pid)

    def shutdown(self) -> None:
        for key in list(self.procs):
            self.kill(key)
        for p, _, _ in self.procs.values():
            p.wait()
        self.procs.clear()
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)
