"""Which datastore the client reads: the configured root, env switching,
``metadata()`` pinning, absent roots, and a missing or stale index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from headwater.client import Flow, Headwater, Run, Task, default_metadata, get_metadata, metadata
from headwater.exceptions import HeadwaterException, HeadwaterNotFound

from .conftest import make_run


def test_get_metadata_names_the_configured_root(root) -> None:
    assert get_metadata() == f"local@{root}"


def test_root_follows_the_environment(tmp_path, monkeypatch) -> None:
    a, b = tmp_path / "a" / ".headwater", tmp_path / "b" / ".headwater"
    make_run(a, "AFlow", "1")
    make_run(b, "BFlow", "2")
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(a))
    assert [f.id for f in Headwater()] == ["AFlow"]
    run_a = Run("AFlow/1")
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(b))
    assert get_metadata() == f"local@{b}"
    assert [f.id for f in Headwater()] == ["BFlow"]
    with pytest.raises(HeadwaterNotFound, match=r"Flow 'AFlow' does not exist"):
        Flow("AFlow")
    # An object keeps reading the root it was opened from.
    assert run_a.data.message == "done"
    assert [s.id for s in run_a] == ["end", "join", "work", "start"]


def test_root_from_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HEADWATER_DATASTORE_ROOT")
    project = tmp_path / "project"
    make_run(project / ".headwater", "CwdFlow", "5")
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")
    assert get_metadata() == f"local@{project / '.headwater'}"
    assert Run("CwdFlow/5").successful


def test_metadata_pins_a_root(tmp_path, root) -> None:
    other = tmp_path / "other"
    make_run(other / ".headwater", "OtherFlow", "7")
    make_run(root, "HomeFlow", "8")
    # The directory holding .headwater, or the .headwater directory itself.
    assert metadata(f"local@{other}") == f"local@{other / '.headwater'}"
    assert [f.id for f in Headwater()] == ["OtherFlow"]
    assert metadata(str(other / ".headwater")) == f"local@{other / '.headwater'}"
    assert Run("OtherFlow/7").successful
    assert default_metadata() == f"local@{root}"
    assert [f.id for f in Headwater()] == ["HomeFlow"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("service@http://md", r"Metadata provider 'service' is not supported"),
        ("https://md.example", r"A metadata service \(https://md.example\) is not supported"),
        ("", r"metadata\(\) expects a string"),
    ],
)
def test_metadata_rejects_other_providers(spec, match) -> None:
    with pytest.raises(HeadwaterException, match=match):
        metadata(spec)


def test_metadata_of_a_directory_without_a_store(tmp_path) -> None:
    with pytest.raises(HeadwaterNotFound, match=r"No headwater datastore at"):
        metadata(f"local@{tmp_path / 'nothing'}")


def test_an_absent_root_is_empty_and_not_created(tmp_path, monkeypatch) -> None:
    absent = tmp_path / "absent" / ".headwater"
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(absent))
    assert Headwater().flows == []
    with pytest.raises(HeadwaterNotFound, match=r"Flow 'HelloFlow' does not exist") as exc:
        Flow("HelloFlow")
    assert f"The datastore root {absent} does not exist" in str(exc.value)
    assert "HEADWATER_DATASTORE_ROOT" in str(exc.value)
    with pytest.raises(HeadwaterNotFound, match=r"Run 'HelloFlow/1' does not exist"):
        Run("HelloFlow/1")
    assert not absent.exists()


def test_missing_index_is_rebuilt_from_records(root) -> None:
    make_run(root, run_id="1000")
    os.remove(root / "index.sqlite")
    assert [r.id for r in Flow("HelloFlow")] == ["1000"]
    assert Run("HelloFlow/1000").data.message == "done"
    assert [t.id for t in Run("HelloFlow/1000")["work"]] == ["4", "3", "2"]


def test_objects_the_index_does_not_know_are_read_from_records(root) -> None:
    make_run(root, run_id="1000", created_at=1000.0)
    assert Flow("HelloFlow").latest_run.id == "1000"  # the index is open now
    make_run(root, run_id="2000", created_at=2000.0, index=False, retry=True, tags=("late",))
    run = Run("HelloFlow/2000")
    assert run.successful and run.finished and run.tags >= {"late", "user:alice"}
    assert run.created_at is not None and run.finished_at is not None
    assert [s.id for s in run] == ["end", "join", "work", "start"]
    assert [t.id for t in run["work"]] == ["4", "3", "2"]
    task = Task("HelloFlow/2000/work/3")
    assert task.current_attempt == 1 and task.successful and task.data.item == "b"
    assert run.data.message == "done"


def test_run_without_end_record_is_running_from_records(root) -> None:
    make_run(root, run_id="1000")
    make_run(root, run_id="3000", index=False, running=True)
    run = Run("HelloFlow/3000")
    assert not run.finished and not run.successful and run.finished_at is None


def test_client_never_imports_the_runtime() -> None:
    import ast

    pkg = Path(__import__("headwater.client", fromlist=["x"]).__file__).parent
    for path in pkg.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                assert not mod.lstrip(".").startswith(("runtime", "cli", "flow")), (path.name, mod)
                assert "headwater.runtime" not in mod and "headwater.cli" not in mod, (path.name, mod)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("headwater.runtime", "headwater.cli")), path.name


def test_many_roots_stay_usable(tmp_path, monkeypatch) -> None:
    runs = []
    for i in range(12):  # more roots than the client keeps open at once
        r = tmp_path / f"s{i}" / ".headwater"
        make_run(r, run_id=str(i))
        monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(r))
        runs.append(Run(f"HelloFlow/{i}"))
    assert [run.id for run in runs] == [str(i) for i in range(12)]
    assert all(run.successful for run in runs)  # the first roots' index was closed and reopened
    assert [s.id for s in runs[0]] == ["end", "join", "work", "start"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_reads_with_its_own_connection(root) -> None:
    make_run(root)
    run = Run("HelloFlow/1000")
    assert run.successful  # the parent has the index open
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            ok = run.data.message == "done" and [t.id for t in run["work"]] == ["4", "3", "2"]
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [t.id for t in run["work"]] == ["4", "3", "2"]


def test_a_url_root_exists_once_its_store_holds_an_object(monkeypatch) -> None:
    from memstore import serve_mem_scheme

    from headwater.client.source import Source

    stores = serve_mem_scheme(monkeypatch)
    src = Source("mem://bucket/prefix")
    assert src.root == "mem://bucket/prefix"
    assert src.exists is False  # asked of the object store: no directory is looked for
    stores["mem://bucket/prefix"].put("runs/F/1/run.json", b"{}")
    assert src.exists is True
