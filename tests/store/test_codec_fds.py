"""Loading many memory-mapped artifacts at once never runs out of file descriptors."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from flowrun import FLOWS, USER

N = 200
NOFILE = 128


def test_join_over_many_mapped_arrays_under_a_low_fd_limit(tmp_path, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER, "HEADWATER_LAUNCHER": "fork"})

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

    p = subprocess.run([sys.executable, str(FLOWS / "mmap_join_flow.py"), "run", "--n", str(N),
                        "--max-num-splits", str(N), "--max-workers", "4"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path),
                       preexec_fn=low_limit)
    assert p.returncode == 0, p.stdout + p.stderr
    use_root(root)
    assert Flow("MmapJoinFlow").latest_run.data.total == float(N)


def test_loads_past_the_mapping_budget_still_return_the_data(tmp_path, monkeypatch):
    import numpy as np

    from headwater.store import codec
    from headwater.store.content import ContentStore
    from headwater.store.objects import LocalObjectStore

    if sys.version_info >= (3, 13):
        import pytest

        pytest.skip("mappings hold no file descriptor on Python 3.13+")
    monkeypatch.setattr(codec._loaded, "enabled", False)  # task processes keep their mappings; not here
    base = codec.live_mappings()
    monkeypatch.setattr(codec._file_maps, "budget", base + 8)
    cs = ContentStore(LocalObjectStore(tmp_path))
    ref = cs.save(np.random.default_rng(0).random(300_000))  # incompressible: stored raw, mapped on load
    before = len(os.listdir("/proc/self/fd"))
    held = [cs.load(ref) for _ in range(28)]
    assert all((a == held[0]).all() for a in held)
    assert codec.live_mappings() == base + 8
    assert len(os.listdir("/proc/self/fd")) - before <= 8
    held[20][0] = -1.0  # a copy in memory is writable like a mapping
    assert held[21][0] != -1.0
    del held
    assert codec.live_mappings() == base
