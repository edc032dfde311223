"""Who wrote a temp file, and whether the sweep may remove it (store/tempfiles.py on headwater.procinfo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from headwater import procinfo
from headwater.store.tempfiles import owner_stem, sweep_dir, writer_gone

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
NOBODY = 65534


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@linux_only
def test_a_process_is_named_by_pid_and_start_time() -> None:
    me = procinfo.proc_stat(os.getpid())
    assert me is not None and not me.exited
    assert owner_stem() == f"{os.getpid()}.{me.start_ticks}"
    assert procinfo.proc_stat(_dead_pid()) is None
    with subprocess.Popen([sys.executable, "-c", "pass"]) as zombie:
        while (stat := procinfo.proc_stat(zombie.pid)) is not None and not stat.exited:
            time.sleep(0.005)  # until it has exited, not yet reaped: a zombie
        assert stat is not None and stat.exited
        assert writer_gone(f"{zombie.pid}.{stat.start_ticks}-ab") and not procinfo.pid_alive(zombie.pid)


@linux_only
def test_writer_gone_tells_live_dead_and_reused_pids() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            stat = procinfo.proc_stat(live.pid)
            assert stat is not None
            assert not writer_gone(f"{live.pid}.{stat.start_ticks}-ab")
            assert not writer_gone(f".{live.pid}-ab.tmp")  # a name from before start times: kept
            assert writer_gone(f"{live.pid}.{stat.start_ticks + 1}-ab")  # the pid now names another process
        finally:
            live.kill()
    assert writer_gone(f"{_dead_pid()}.1-ab")
    assert not writer_gone("index.sqlite") and not writer_gone(f"{owner_stem()}-ab")


def test_the_signal_probe_decides_when_proc_cannot_be_read(monkeypatch) -> None:
    """hidepid or no /proc: only "no such process" means gone; EPERM (another user's) is alive."""
    monkeypatch.setattr(procinfo, "proc_stat", lambda pid: None)

    def kill(pid: int, sig: int) -> None:
        raise {1: PermissionError(1, "Operation not permitted"), 2: ProcessLookupError(3, "No such process"),
               3: OSError(22, "Invalid argument")}[pid]

    monkeypatch.setattr(os, "kill", kill)
    assert not writer_gone("1.5-ab") and procinfo.pid_alive(1)
    assert writer_gone("2.5-ab") and not procinfo.pid_alive(2)
    assert not writer_gone("3.5-ab") and procinfo.pid_alive(3)  # cannot tell: never remove, never call dead


def _can_hide_proc() -> bool:
    return (sys.platform.startswith("linux") and os.geteuid() == 0
            and shutil.which("unshare") is not None and shutil.which("setpriv") is not None)


@pytest.mark.skipif(not _can_hide_proc(), reason="needs root, unshare and setpriv to mount /proc with hidepid")
def test_the_sweep_keeps_a_live_writers_file_that_proc_hides() -> None:
    """The sweep runs as another user under hidepid=2: /proc/<pid> of the live writer cannot be read."""
    temp = Path(tempfile.mkdtemp(prefix="hw-hidepid-"))  # pytest's tmp_path is closed to other users
    os.chmod(temp, 0o777)  # the sweeping user could remove any of them
    try:
        _sweep_as_nobody_under_hidepid(temp)
    finally:
        shutil.rmtree(temp)


def _sweep_as_nobody_under_hidepid(temp: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            stat = procinfo.proc_stat(live.pid)
            assert stat is not None
            kept, dead = f"{live.pid}.{stat.start_ticks}-ab", f"{_dead_pid()}.1-cd"
            (temp / kept).write_bytes(b"x")
            (temp / dead).write_bytes(b"y")
            src = str(Path(procinfo.__file__).parents[1])
            sweep = (f"import os, sys; sys.path.insert(0, {src!r}); from headwater.store.tempfiles import sweep_dir; "
                     f"print(os.path.exists('/proc/{live.pid}/stat'), sweep_dir({str(temp)!r}))")
            p = subprocess.run(["unshare", "-m", "sh", "-c",
                                'mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid="$0" --regid="$0" '
                                '--clear-groups "$1" -c "$2"', str(NOBODY), sys.executable, sweep],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0 or not p.stdout.startswith("False"):
                pytest.skip(f"cannot hide /proc here: {p.stdout}{p.stderr}")
            assert p.stdout.strip() == "False (1, 1)", p.stdout + p.stderr
            assert sorted(os.listdir(temp)) == [kept]
        finally:
            live.kill()
    assert sweep_dir(str(temp)) == (1, 1)  # once its writer is gone, it goes too
