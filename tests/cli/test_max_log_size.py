"""``run``/``resume --max-log-size``: accepted as Metaflow accepts it (not enforced yet)."""

from __future__ import annotations

from flowrun import run_flow


def test_max_log_size_is_accepted(tmp_path) -> None:
    root = tmp_path / ".headwater"
    r = run_flow("chatty_flow.py", "run", "--max-log-size", "1", root=root)
    assert r.returncode == 0, r.output
    r = run_flow("chatty_flow.py", "resume", "--max-log-size", "1", "work", root=root)
    assert r.returncode == 0, r.output
    r = run_flow("chatty_flow.py", "run", "--max-log-size", "0", root=root)
    assert r.returncode == 2 and "Invalid value for '--max-log-size'" in r.stderr
