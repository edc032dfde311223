"""Runner datastore roots: a ``file://`` URL and a path relative to the Runner's cwd."""

from __future__ import annotations

from flowrun import FLOWS, USER

from headwater import Runner

ENV = {"HEADWATER_USER": USER}


def test_file_url_root(tmp_path) -> None:
    root = tmp_path / ".headwater"
    with Runner(FLOWS / "linear_flow.py", env=ENV, datastore_root=f"file://{root}", show_output=False).run() as r:
        assert r.run.successful and r.run.data.y == 6
    assert (root / "runs" / "LinearFlow" / r.run.id).is_dir()


def test_relative_root_starts_at_the_runners_cwd(tmp_path) -> None:
    runner = Runner(FLOWS / "linear_flow.py", env=ENV, datastore_root="st", cwd=tmp_path, show_output=False)
    with runner.run() as r:
        assert r.run.successful
    assert (tmp_path / "st" / "runs" / "LinearFlow" / r.run.id).is_dir()
