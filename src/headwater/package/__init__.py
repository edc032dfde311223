"""The code package (internal): the flow file and the user code it needs, packed
deterministically, stored content-addressed in the datastore, and extracted and
imported where a task runs on another machine.

``archive`` decides what goes in and builds the bytes; ``stored`` saves a package
to a datastore and fetches and extracts it again.
"""

from __future__ import annotations

from .archive import DEFAULT_SUFFIXES, CodePackage, PackageEntry, build_package, collect_entries, parse_suffixes
from .stored import PACKAGE_RECORD_KEY, extract_package, fetch_package, save_package

__all__ = ["DEFAULT_SUFFIXES", "PACKAGE_RECORD_KEY", "CodePackage", "PackageEntry", "build_package",
           "collect_entries", "extract_package", "fetch_package", "parse_suffixes", "save_package"]
