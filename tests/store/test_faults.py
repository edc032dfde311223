"""Store faults through real runs (issue 8): a damaged blob heals by re-running, a
replaced index never shows wrong status, damaged records are named, dead writers'
temp files are cleaned, and a full disk ends in one clear message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowrun import run_flow

FLOW = "store_fault_flow.py"


def _blob_paths(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file())


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_blob_is_repaired_by_rerunning(tmp_path, use_root) -> None:
    from headwater import Flow
    from headwater.exceptions import DataCorruptionError

    root = tmp_path / ".headwater"
    first = run_flow(FLOW, "run", root=root)
    assert first.returncode == 0, first.output
    (blob,) = _blob_paths(root)
    _damage(blob)
    use_root(root)
    run = Flow("StoreFaultFlow").latest_run
    with pytest.raises(DataCorruptionError, match="Re-run the step that produced this artifact"):
        run["start"].task.data.payload
    # The hint is true: the re-run stores the blob again instead of keeping the damaged one.
    again = run_flow(FLOW, "run", root=root)
    assert again.returncode == 0, again.output
    assert run["start"].task.data.payload == bytes(range(256)) * 64  # the first run is repaired too
    assert len(list((root / "quarantine").iterdir())) == 1
