"""Write tiny pure-Python wheels by hand into a find-links directory (test helper, offline)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_wheel(directory: Path, name: str, version: str, *, requires: tuple[str, ...] = ()) -> Path:
    """A wheel of package ``name`` whose module has ``__version__ = version``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": ("Metadata-Version: 2.1\n"
                                  f"Name: {name}\nVersion: {version}\n"
                                  + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: headwater-tests\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n",
    }
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        lines = []
        for arc, data in files.items():
            zf.writestr(arc, data)
            lines.append(_record_line(arc, data))
        lines.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(lines) + "\n")
    return path
