"""The same S3 data-tool script under Metaflow's ``metaflow.S3`` and ``headwater.S3``, against the
same moto server (one bucket each): every call must return the same objects, or fail with the
same class of error. Skipped when no Python with Metaflow 2.19.39 and boto3 is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat.harness import METAFLOW_VERSION, PYTHON_ENV, default_cache_dir

PROBE = Path(__file__).with_name("s3_probe.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _metaflow_python() -> str:
    for cand in (os.environ.get(PYTHON_ENV), str(default_cache_dir() / "bin" / "python"), "/work/mfvenv/bin/python"):
        if cand and os.path.exists(cand):
            p = subprocess.run([cand, "-c", "import boto3, metaflow; print(metaflow.__version__)"],
                               capture_output=True, text=True, env={**os.environ, "METAFLOW_USER": "tester"})
            if p.returncode == 0 and p.stdout.strip() == METAFLOW_VERSION:
                return cand
    pytest.skip(f"no Python with metaflow=={METAFLOW_VERSION} and boto3 (set {PYTHON_ENV})")


def _probe(python: str, engine: str, root: str, tmp: Path, env: dict[str, str]) -> list:
    tmp.mkdir()
    p = subprocess.run([python, str(PROBE), engine, root, str(tmp)], capture_output=True, text=True, env=env,
                       cwd=str(tmp), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_headwater_s3_matches_metaflow_s3(s3_server, tmp_path: Path):
    python = _metaflow_python()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "METAFLOW_"))}
    server = s3_server.env()
    mf_env = {**base, **server, "METAFLOW_S3_ENDPOINT_URL": s3_server.url, "METAFLOW_USER": "tester",
              "METAFLOW_HOME": str(tmp_path / "mfhome")}
    hw_env = {**base, **server, "PYTHONPATH": str(SRC), "HEADWATER_USER": "tester"}
    mf = _probe(python, "metaflow", f"s3://{s3_server.new_bucket('mf')}/root", tmp_path / "mf", mf_env)
    hw = _probe(sys.executable, "headwater", f"s3://{s3_server.new_bucket('mf')}/root", tmp_path / "hw", hw_env)
    assert [label for label, _ in hw] == [label for label, _ in mf]
    for (label, want), (_, got) in zip(mf, hw):
        assert got == want, label
