"""The code package: deterministic bytes, what goes in, ``package info|list|save``, the run
record's ``code_package`` and ``Run.code``, and a worker importing the flow from it."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from flowrun import run_flow

SRC = str(Path(__file__).resolve().parents[2] / "src")

FLOW = '''\
"""A flow that imports user code from beside it, from a subpackage and from another sys.path entry."""
import click  # installed: never packaged

import helper
import libmod
from sub import mod
from headwater import FlowSpec, step


class PkgFlow(FlowSpec):
    @step
    def start(self):
        self.value = helper.VALUE + mod.VALUE + libmod.VALUE
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PkgFlow()
'''


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    """(flow file, extra sys.path dir): a flow dir with modules, data, hidden and cache dirs."""
    d = tmp_path / "proj"
    (d / "sub").mkdir(parents=True)
    (d / "flow.py").write_text(FLOW)
    (d / "helper.py").write_text("VALUE = 1\n")
    (d / "sub" / "__init__.py").write_text("")
    (d / "sub" / "mod.py").write_text("VALUE = 10\n")
    (d / "notes.txt").write_text("data next to the flow\n")
    (d / ".hidden").mkdir()
    (d / ".hidden" / "secret.py").write_text("X = 1\n")
    (d / "__pycache__").mkdir()
    (d / "__pycache__" / "stale.py").write_text("X = 1\n")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libmod.py").write_text("VALUE = 100\n")
    return d / "flow.py", lib


def _run(flow: Path, lib: Path, *args: str, root: Path, env: dict[str, str] | None = None):
    full = {"PYTHONPATH": os.pathsep.join([str(lib), SRC]), **(env or {})}
    return run_flow(flow, *args, root=root, env=full, cwd=flow.parent)


def _listed(r) -> list[str]:
    """The files ``package list`` printed: the stderr lines after Metaflow's header (stdout stays empty)."""
    assert r.returncode == 0, r.output
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    return lines[lines.index("Files included in the code package (change with --package-suffixes):") + 1:]


def _archive_names(blob: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return tar.getnames()


def test_list_includes_user_code_only(project, tmp_path):
    flow, lib = project
    r = _run(flow, lib, "package", "list", "--archive", root=tmp_path / ".headwater")
    assert _listed(r) == ["flow.py", "helper.py", "libmod.py", "sub/__init__.py", "sub/mod.py"]
    assert "executing PkgFlow for user:" in r.stderr  # the banner, as Metaflow's
    r = _run(flow, lib, "package", "list", root=tmp_path / ".headwater")
    assert str(lib / "libmod.py") in _listed(r) and str(flow) in _listed(r)


def test_package_suffixes_add_data_files(project, tmp_path):
    flow, lib = project
    r = _run(flow, lib, "--package-suffixes", ".py,.txt", "package", "list", "--archive", root=tmp_path / ".hw")
    assert "notes.txt" in _listed(r) and "flow.py" in _listed(r)


def test_info_describes_the_package(project, tmp_path):
    flow, lib = project
    r = _run(flow, lib, "package", "info", root=tmp_path / ".headwater")
    assert r.returncode == 0, r.output
    assert r.stdout == ""  # Metaflow prints it on stderr
    assert "Number of files: 5" in r.stderr
    assert f"Packaged from directory {flow.parent}{os.sep}" in r.stderr
    assert "Filtered by suffixes: .py" in r.stderr


def test_save_is_deterministic(project, tmp_path):
    flow, lib = project
    root = tmp_path / ".headwater"
    first, second = tmp_path / "a.tgz", tmp_path / "b.tgz"
    assert _run(flow, lib, "package", "save", str(first), root=root).returncode == 0
    for p in flow.parent.rglob("*"):  # new mtimes and modes, same content
        os.utime(p, (1_000_000_000, 1_000_000_000))
        if p.is_file():
            p.chmod(0o600)
    r = _run(flow, lib, "package", "save", str(second), root=root)
    assert r.returncode == 0, r.output
    assert "Code package saved in" in r.stderr
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(second) as tar:
        assert {(m.mtime, m.mode, m.uid, m.gid, m.uname) for m in tar.getmembers()} == {(0, 0o644, 0, 0, "")}
    (flow.parent / "helper.py").write_text("VALUE = 2\n")
    third = tmp_path / "c.tgz"
    assert _run(flow, lib, "package", "save", str(third), root=root).returncode == 0
    assert third.read_bytes() != first.read_bytes()


def test_save_to_unwritable_path_is_a_user_error(project, tmp_path):
    flow, lib = project
    r = _run(flow, lib, "package", "save", str(tmp_path / "no" / "such" / "dir.tgz"), root=tmp_path / ".hw")
    assert r.returncode == 1
    assert "Cannot save the code package" in r.stderr and "Traceback" not in r.stderr


def test_run_without_the_setting_stores_no_package(project, tmp_path, use_root):
    flow, lib = project
    root = tmp_path / ".headwater"
    r = _run(flow, lib, "run", root=root)
    assert r.returncode == 0, r.output
    use_root(root)
    from headwater import Flow

    run = Flow("PkgFlow").latest_run
    assert run.code is None and run["end"].task.code is None


def test_run_stores_package_and_worker_imports_it(project, tmp_path, use_root):
    flow, lib = project
    root = tmp_path / ".headwater"
    env = {"HEADWATER_CODE_PACKAGE": "1"}
    r = _run(flow, lib, "run", root=root, env=env)
    assert r.returncode == 0, r.output
    saved = tmp_path / "saved.tgz"
    assert _run(flow, lib, "package", "save", str(saved), root=root).returncode == 0
    use_root(root)
    from headwater import Flow
    from headwater.store import Datastore

    run = Flow("PkgFlow").latest_run
    code = run.code
    assert code.script_name == "flow.py" and code.flowspec == FLOW
    assert code.info["files"] == 5 and code.info["suffixes"] == [".py"]
    assert os.path.isfile(code.path) and code.path.startswith(str(root))
    assert code.tarball.getnames() == _archive_names(saved.read_bytes())
    assert run["end"].task.code.info == code.info
    tmp = code.extract()
    assert (Path(tmp.name) / "sub" / "mod.py").read_text() == "VALUE = 10\n"
    tmp.cleanup()

    # A second run of the same code stores nothing new: same key, one blob.
    assert _run(flow, lib, "run", root=root, env=env).returncode == 0
    keys = {Datastore(str(root)).records.read_run("PkgFlow", rid).get("code_package", {}).get("key")
            for rid in Datastore(str(root)).records.runs("PkgFlow")}
    assert keys == {code.info["key"]}

    # The worker: another directory, the user code gone, only headwater on its path.
    shutil.rmtree(flow.parent)
    shutil.rmtree(lib)
    elsewhere = tmp_path / "worker"
    elsewhere.mkdir()
    script = textwrap.dedent(f"""
        from headwater.package import fetch_package
        from headwater.store import Datastore
        ds = Datastore({str(root)!r})
        info = ds.records.read_run("PkgFlow", {run.id!r})["code_package"]
        where = fetch_package(ds.content, info, {str(tmp_path / "cache")!r})
        import flow
        print(where, flow.PkgFlow.__name__, flow.helper.VALUE + flow.mod.VALUE + flow.libmod.VALUE)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=elsewhere,
                       env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert p.returncode == 0, p.stderr
    where, name, total = p.stdout.split()
    assert where == str(tmp_path / "cache" / code.info["key"]) and name == "PkgFlow" and total == "111"


def test_extract_refuses_paths_outside_the_target(tmp_path):
    from headwater.package import extract_package
    from headwater.package.archive import CodePackageError

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(CodePackageError, match="unsafe path"):
        extract_package(raw.getvalue(), str(tmp_path / "out"))
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "out").exists()


def test_run_packages_with_the_given_suffixes(project, tmp_path, use_root):
    flow, lib = project
    root = tmp_path / ".headwater"
    r = _run(flow, lib, "--package-suffixes", ".txt,.py", "run", root=root, env={"HEADWATER_CODE_PACKAGE": "1"})
    assert r.returncode == 0, r.output
    use_root(root)
    from headwater import Flow

    code = Flow("PkgFlow").latest_run.code
    assert code.info["suffixes"] == [".py", ".txt"]
    assert os.path.isfile(code.path)
    assert "notes.txt" in code.tarball.getnames() and ".hidden/secret.py" not in code.tarball.getnames()


def test_fetch_extracts_once_per_key(tmp_path):
    from headwater.package import build_package, fetch_package, save_package
    from headwater.store import Datastore

    (tmp_path / "proj").mkdir()
    flow = tmp_path / "proj" / "f.py"
    flow.write_text("X = 'x' * 5000\n" + "\n".join(f"V{i} = {i * 7919}" for i in range(400)))
    pkg = build_package(str(flow), modules={}, path_entries=[])
    ds = Datastore(str(tmp_path / ".headwater"))
    info = save_package(ds.content, pkg)
    assert "inline" not in info["ref"]  # big enough to be a blob
    assert save_package(ds.content, pkg) == info  # a dedup hit: same key
    where = fetch_package(ds.content, info, str(tmp_path / "cache"), add_to_path=False)
    (Path(where) / "marker").write_text("kept")
    assert fetch_package(ds.content, info, str(tmp_path / "cache"), add_to_path=False) == where
    assert (Path(where) / "marker").read_text() == "kept"  # not extracted again
    assert sorted(os.listdir(tmp_path / "cache")) == [info["key"]]  # no temp dirs left
