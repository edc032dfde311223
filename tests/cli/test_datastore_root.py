"""The datastore root as users give it: a relative path, a ``file://`` URL, or a URL
that no installed object store serves; real runs checked through the client."""

from __future__ import annotations

import headwater
from flowrun import run_flow


def test_file_url_root_runs_the_flow_in_that_directory(tmp_path, use_root) -> None:
    root = tmp_path / ".headwater"
    r = run_flow("linear_flow.py", "--datastore-root", f"file://{root}", "run", root=tmp_path / "unused")
    assert r.returncode == 0, r.output
    assert not (tmp_path / "unused").exists()
    use_root(root)
    run = headwater.Flow("LinearFlow").latest_run
    assert run.successful and run.data.y == 6


def test_relative_root_is_taken_from_the_working_directory(tmp_path, use_root) -> None:
    (tmp_path / "work").mkdir()
    r = run_flow("linear_flow.py", "run", root=tmp_path / "ignored", cwd=tmp_path / "work",
                 env={"HEADWATER_DATASTORE_ROOT": "rel/.headwater"})
    assert r.returncode == 0, r.output
    use_root(f"file://{tmp_path}/work/rel/.headwater")
    assert headwater.Flow("LinearFlow").latest_run.successful


def test_a_root_url_no_store_serves_is_refused(tmp_path) -> None:
    r = run_flow("linear_flow.py", "--datastore-root", "nope://bucket/prefix", "run", root=tmp_path / "unused")
    assert r.returncode != 0
    assert "No object store handles 'nope://bucket/prefix' (scheme 'nope')" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "unused").exists()


def test_the_datastore_kind_picks_the_root_for_every_reader(tmp_path) -> None:
    """HEADWATER_DATASTORE=s3 with HEADWATER_DATASTORE_SYSROOT_S3: the run, the client and the
    `headwater` command all use the S3 root (one resolution, in load_settings)."""
    from headwater.config import DatastoreKind, load_settings

    env = {"HEADWATER_DATASTORE": "s3", "HEADWATER_DATASTORE_SYSROOT_S3": "s3://bucket/team"}
    s = load_settings(environ=env, cwd=str(tmp_path))
    assert s.datastore_root == "s3://bucket/team" and s.datastore is DatastoreKind.S3
    # an explicit root still wins, and a local kind keeps the local default
    s = load_settings(environ={**env, "HEADWATER_DATASTORE_ROOT": "s3://other/x"}, cwd=str(tmp_path))
    assert s.datastore_root == "s3://other/x"
    s = load_settings(environ={**env, "HEADWATER_DATASTORE": "local"}, cwd=str(tmp_path))
    assert s.datastore_root == str(tmp_path / ".headwater")
