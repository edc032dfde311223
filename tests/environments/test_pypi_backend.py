"""The PyPI backend's own rules: Metaflow's version strings, reading uv's lock, headwater's needs."""

from __future__ import annotations

import pytest

from headwater.environments.pypi import parse_lock, requirement


@pytest.mark.parametrize("version, expected", [
    ("2.2.2", "pandas==2.2.2"), (">=2", "pandas>=2"), ("~=1.4", "pandas~=1.4"), ("==1.*", "pandas==1.*"),
    ("", "pandas"), ("1.*", "pandas==1.*"), ("!=2.0", "pandas!=2.0"),
])
def test_versions_are_read_as_metaflow_reads_them(version: str, expected: str) -> None:
    assert requirement("pandas", version) == expected


def test_the_lock_lists_each_pinned_package_with_its_hash() -> None:
    text = ("tinylib==1.0.0 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
            "Click==8.1.7 \\\n    --hash=sha256:" + "c" * 64 + "\n")
    packages = parse_lock(text)
    assert [(p.name, p.version, p.sha256) for p in packages] == [("Click", "8.1.7", "c" * 64),
                                                                 ("tinylib", "1.0.0", "a" * 64)]


def test_another_python_gets_headwaters_compiled_dependencies() -> None:
    import platform

    from headwater.environments.pypi import runtime_requirements

    major, minor, *_ = platform.python_version().split(".")
    assert runtime_requirements(f"{major}.{minor}.0", set()) == []  # the shim serves the launching Python
    other = runtime_requirements(f"{major}.{int(minor) + 1}.0", set())
    assert {"blake3", "zstandard"} <= {n.lower() for n in other} and "click" not in other
    assert "blake3" not in {n.lower() for n in runtime_requirements(f"{major}.{int(minor) + 1}.0", {"blake3"})}
