"""The code package (internal): the flow file and the user code it needs, packed
deterministically, stored content-addressed in the datastore, and extracted and
imported where a task runs on another machine.

``archive`` decides what goes in and builds the bytes; ``stored`` saves a package
to a datastore and fetches and extracts it again. Both load on first use (they
import ``tarfile``), so a run that stores no package does not pay for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

#: Setting (``HEADWATER_CODE_PACKAGE=1``) that makes every run store its code package.
PACKAGE_SETTING = "HEADWATER_CODE_PACKAGE"

_LAZY = {
    "DEFAULT_SUFFIXES": "archive", "CodePackage": "archive", "CodePackageError": "archive",
    "PackageEntry": "archive", "build_package": "archive", "collect_entries": "archive",
    "parse_suffixes": "archive",
    "PACKAGE_RECORD_KEY": "stored", "extract_package": "stored", "fetch_package": "stored",
    "save_package": "stored",
}

__all__ = sorted(["PACKAGE_SETTING", "package_wanted", *_LAZY])


def package_wanted(extra: Mapping[str, str]) -> bool:
    """Whether a run stores its code package, from the settings' ``HEADWATER_*`` values.

    Local launchers need none, so only when asked: ``HEADWATER_CODE_PACKAGE=1`` (a
    launcher that runs tasks elsewhere will ask for one).
    """
    return str(extra.get(PACKAGE_SETTING, "")).strip().lower() in ("1", "true", "yes", "on")


def __getattr__(name: str) -> object:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'headwater.package' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
