"""A run's code package as the client sees it (reading layer): ``HeadwaterCode``,
the equivalent of Metaflow's ``MetaflowCode`` (``Run.code`` and ``Task.code``).
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from typing import Any

from ..store.content import blob_key
from ..store.records import RecordStore


class HeadwaterCode:
    """The code package a run stored (the flow file and the user modules it imports).

    Runs store one only when asked (``HEADWATER_CODE_PACKAGE=1``, or a launcher that
    runs tasks elsewhere); otherwise ``Run.code`` is ``None``.

    Examples
    --------
    >>> code = Run("HelloFlow/1763841234567890").code  # doctest: +SKIP
    >>> code.script_name, code.flowspec.startswith("from headwater")  # doctest: +SKIP
    ('hello.py', True)
    """

    def __init__(self, flow: str, run_id: str, info: dict[str, Any], source: Any):
        self._flow = flow
        self._run_id = run_id
        self._info = info
        self._source = source
        self._blob: bytes | None = None

    def __repr__(self) -> str:
        return f"HeadwaterCode('{self._flow}/{self._run_id}', key={self._info['key'][:12]}...)"

    def _bytes(self) -> bytes:
        if self._blob is None:
            self._blob = self._source.load(self._info["ref"])
        return self._blob

    @property
    def path(self) -> str:
        """Where the package lives under the datastore root: its blob (``<root>/blobs/..``), or
        the run record when the archive is small enough to live inline in it."""
        ref = self._info["ref"]
        key = RecordStore.run_key(self._flow, self._run_id) if "inline" in ref else blob_key(ref["key"])
        return f"{self._source.root.rstrip('/')}/{key}"

    @property
    def info(self) -> dict[str, Any]:
        """What the package holds: ``key``, ``script``, ``suffixes``, ``files``."""
        return {k: v for k, v in self._info.items() if k != "ref"}

    @property
    def script_name(self) -> str:
        """The flow file's name (its path inside the package)."""
        return str(self._info["script"])

    @property
    def tarball(self) -> tarfile.TarFile:
        """The package as an open ``tarfile.TarFile`` (read from memory)."""
        return tarfile.open(fileobj=io.BytesIO(self._bytes()), mode="r:gz")

    @property
    def flowspec(self) -> str:
        """The source text of the flow file."""
        with self.tarball as tar:
            f = tar.extractfile(self.script_name)
            assert f is not None  # the packager always adds the flow file as a regular file
            return f.read().decode("utf-8")

    def extract(self) -> tempfile.TemporaryDirectory:
        """Extract the package into a new temporary directory (removed when it is cleaned up).

        Returns
        -------
        tempfile.TemporaryDirectory
            Its ``.name`` is the directory holding the flow file and its modules.
        """
        tmp = tempfile.TemporaryDirectory(prefix="headwater-code-")
        with self.tarball as tar:
            tar.extractall(tmp.name, filter="data")
        return tmp


def code_of_run(source: Any, flow: str, run_id: str) -> HeadwaterCode | None:
    """The code package of run ``flow/run_id``, or ``None`` if it stored none."""
    rec = source.run_record(flow, run_id) or {}
    info = rec.get("code_package")
    return HeadwaterCode(flow, run_id, info, source) if info else None
