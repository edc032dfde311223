"""A fake Argo Workflows cluster for tests: the fake API server (tests/fakekube.py) with strict
Argo validators and the fake controller (tests/fakeargo.py) running Workflows against the
session's S3 server (test helper)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from argo_schema import validate
from fakeargo import API, FakeArgo
from fakekube import FakeKube
from flowrun import USER
from s3server import S3Server


@dataclass
class ArgoCluster:
    kube: FakeKube
    argo: FakeArgo
    kubeconfig: Path
    root: str  #: the S3 datastore root deployments use
    s3_env: dict[str, str]
    home: Path  #: HEADWATER_HOME of the user deploying (its production tokens, its config file)

    def env(self, **extra: str) -> dict[str, str]:
        """What `python flow.py argo-workflows ...` (or the Deployer) needs to reach the cluster and store."""
        return {**self.s3_env, "KUBECONFIG": str(self.kubeconfig), "HEADWATER_DATASTORE_ROOT": self.root,
                "HEADWATER_USER": USER, "HEADWATER_HOME": str(self.home), **extra}

    def objects(self, plural: str) -> list[dict]:
        return self.kube.objects(API, plural)

    def names(self, plural: str) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.objects(plural))


@contextlib.contextmanager
def argo_cluster(work: Path, s3: S3Server) -> Iterator[ArgoCluster]:
    """The fake cluster, its kubeconfig in ``work``, and a fresh bucket as the datastore."""
    bucket = s3.new_bucket()
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    base.update({**s3.env(), "HEADWATER_USER": USER, "HEADWATER_HOME": str(work / "pod-home")})
    with FakeKube() as kube:
        for plural in ("workflowtemplates", "cronworkflows", "workflows", "sensors"):
            kube.set_validator(API, plural, validate)
        argo = FakeArgo(kube, base_env=base, work_dir=work / "pods")
        try:
            yield ArgoCluster(kube, argo, kube.write_kubeconfig(work / "kubeconfig"), f"s3://{bucket}/argo",
                              s3.env(), work / "home")
        finally:
            argo.close()
