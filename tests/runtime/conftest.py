"""Fixtures of the runtime tests: one real Ray cluster for the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, s3_server):
    """A Ray cluster on loopback addresses (tests/raycluster.py: standard_cluster), started on first use.

    Its nodes reach the session's S3 server as real nodes would: endpoint and
    credentials in their environment. Skipped when ray is not installed.
    """
    pytest.importorskip("ray", reason="Ray tests need the `ray` extra (pip install 'headwater[ray]')")
    from raycluster import standard_cluster

    cluster = standard_cluster(tmp_path_factory.mktemp("ray"), env=s3_server.env())
    try:
        yield cluster
    finally:
        cluster.stop()
