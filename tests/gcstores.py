"""Stores of real runs that share artifacts, on a local directory or S3, for the gc and
delete tests (test helper).

``build_master`` runs ``tests/flows/gc_flow.py`` N times (run i stores shared array
``i % 4`` and an array of its own; every tenth run from the fourth is tagged ``golden``),
plus two runs of another flow. ``GcStore.copy_of`` gives each test its own copy: a local
directory tree, or the same keys uploaded to a fresh S3 bucket (the layout is the same).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from flowrun import USER, run_flow

GC_FLOW = "gc_flow.py"
OTHER_FLOW = "store_fault_flow.py"
SHARED = 4
#: Files of a local store that are not objects.
_NOT_OBJECTS = ("index.sqlite", ".index.lock", "tmp/")


def run_id_of(output: str) -> str:
    (line,) = [ln for ln in output.splitlines() if "Workflow starting (run-id" in ln]
    return line.split("run-id ")[1].split(")")[0]


def build_master(root: Path, n: int = 30) -> list[str]:
    """``n`` GcFlow runs (ids in order) and two StoreFaultFlow runs in the local store ``root``."""
    ids = []
    for i in range(n):
        tags = ["--tag", "golden"] if i % 10 == 3 else []
        r = run_flow(GC_FLOW, "run", "--pick", str(i % SHARED), "--salt", str(i + 1), *tags, root=root)
        assert r.returncode == 0, r.output
        ids.append(run_id_of(r.output))
    for _ in range(2):
        r = run_flow(OTHER_FLOW, "run", root=root)
        assert r.returncode == 0, r.output
    return ids


@dataclass
class GcStore:
    """One test's store: where it is, how to reach it, and how to look inside it."""

    kind: str
    root: str
    env: dict[str, str]
    local: Path | None = None
    bucket: str | None = None
    s3: Any = None
    ids: list[str] = field(default_factory=list)

    @classmethod
    def copy_of(cls, master: Path, ids: list[str], kind: str, tmp: Path, server: Any = None) -> GcStore:
        home = str(tmp / "home")
        if kind == "local":
            root = tmp / ".headwater"
            shutil.copytree(master, root, ignore=shutil.ignore_patterns("index.sqlite*", ".index.lock", "tmp"))
            return cls(kind, str(root), {"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER,
                                         "HEADWATER_HOME": home}, local=root, ids=list(ids))
        bucket = server.new_bucket()
        s3 = server.boto3()
        for path in master.rglob("*"):
            rel = path.relative_to(master).as_posix()
            if path.is_file() and not any(rel.startswith(p) for p in _NOT_OBJECTS):
                s3.put_object(Bucket=bucket, Key=f"team/{rel}", Body=path.read_bytes())
        root = f"s3://{bucket}/team"
        return cls(kind, root, {**server.env(), "HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": USER,
                                "HEADWATER_HOME": home}, bucket=bucket, s3=s3, ids=list(ids))

    # -- looking inside ---------------------------------------------------------------------

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Object key -> size, for every object under ``prefix``."""
        if self.local is not None:
            out = {}
            for p in (self.local / prefix).rglob("*") if prefix else self.local.rglob("*"):
                rel = p.relative_to(self.local).as_posix()
                if p.is_file() and not any(rel.startswith(x) for x in _NOT_OBJECTS):
                    out[rel] = p.stat().st_size
            return out
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"team/{prefix}"):
            for o in page.get("Contents", []):
                out[o["Key"][len("team/"):]] = o["Size"]
        return out

    def read_json(self, key: str) -> dict[str, Any]:
        if self.local is not None:
            return json.loads((self.local / key).read_bytes())
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"team/{key}")["Body"].read())

    def refs_by_run(self) -> dict[tuple[str, str], set[str]]:
        """(flow, run id) -> content keys of the blobs its attempt records name (read here, not by gc)."""
        out: dict[tuple[str, str], set[str]] = {}
        for key in self.sizes("runs/"):
            parts = key.split("/")
            if len(parts) == 6 and parts[5].endswith(".json") and parts[5][:-5].isdigit():
                rec = self.read_json(key)
                keys = out.setdefault((parts[1], parts[2]), set())
                for ref in (rec.get("artifacts") or {}).values():
                    if "inline" not in ref:
                        keys.add(ref["key"])
        return out

    def blob_sizes(self) -> dict[str, int]:
        """Content key -> stored size of every blob."""
        return {k.rpartition("/")[2]: s for k, s in self.sizes("blobs/").items()}

    def run_ids(self, flow: str = "GcFlow") -> set[str]:
        return {k.split("/")[2] for k in self.sizes(f"runs/{flow}/") if k.endswith("/_run.json")}

    def expected_freed(self, kept: set[tuple[str, str]]) -> tuple[set[str], int]:
        """The blobs only removed runs name, and their stored bytes."""
        refs = self.refs_by_run()
        keep = set().union(*(v for k, v in refs.items() if k in kept)) if kept else set()
        gone = set().union(*(v for k, v in refs.items() if k not in kept)) - keep
        sizes = self.blob_sizes()
        return gone, sum(sizes[k] for k in gone)

    # -- commands ------------------------------------------------------------------------

    def cli(self, *args: str) -> Result:
        from headwater.cli.main import cli

        return CliRunner().invoke(cli, list(args), env=self.env)

    def objects(self) -> Any:
        from headwater.store import open_object_store

        return open_object_store(self.root)

    def all_runs(self) -> Iterator[tuple[str, str]]:
        for flow in ("GcFlow", "StoreFaultFlow"):
            for run_id in self.run_ids(flow):
                yield flow, run_id


def artifact_values(i: int) -> dict[str, Any]:
    """What run ``i`` of ``build_master`` stored."""
    import numpy as np

    return {"shared": np.arange(16384, dtype=np.float64) * (i % SHARED + 1),
            "own": np.full(8192, i + 1, dtype=np.int64)}


def set_env(monkeypatch: Any, store: GcStore) -> None:
    """Point in-process code (the client, object stores) at ``store``."""
    for k, v in store.env.items():
        monkeypatch.setenv(k, v)
    os.environ.pop("HEADWATER_NAMESPACE", None)


def pin_test_store(kind: str, tmp_path: Path) -> Any:
    """An empty object store for the pin and sweep tests: a local directory, or a fresh S3
    bucket prefix (``kind`` "s3"; the caller's ``s3_bucket`` fixture names the bucket as
    ``kind`` "s3:<bucket>")."""
    from headwater.store import open_object_store

    if kind == "local":
        return open_object_store(str(tmp_path / ".headwater"))
    return open_object_store(f"s3://{kind.split(':', 1)[1]}/gc")
