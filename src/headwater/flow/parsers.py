"""Parsers for ``Config(parser=...)``: YAML, requirements.txt and pyproject.toml
(authoring layer; imported only when a flow names one).

Each takes the file's text and returns a dict, the shapes Metaflow's parsers
of the same names return, so a config written for them reads the same here.
"""

from __future__ import annotations

import re
from typing import Any

from .config import ConfigError

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")


def yaml_parser(text: str) -> dict[str, Any]:
    """Parse YAML text into a dict (needs PyYAML)."""
    try:
        import yaml
    except ImportError:
        raise ConfigError("yaml_parser needs PyYAML, which is not installed.",
                          hint="pip install pyyaml") from None
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"The YAML config is a {type(data).__name__}, not a mapping.",
                          hint="Make the YAML document a mapping (key: value lines).")
    return data


def requirements_txt_parser(text: str) -> dict[str, Any]:
    """Parse requirements.txt text into ``{"packages": {name: spec}, "python": None}``.

    Comments and blank lines are skipped; options (``-r``, ``--index-url``) are refused.
    """
    packages: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise ConfigError(f"requirements.txt line {number}: options such as {line.split()[0]!r} "
                              "are not supported.", hint="List packages only, one per line.")
        m = _REQUIREMENT.match(line)
        if m is None:
            raise ConfigError(f"requirements.txt line {number}: cannot read {line!r}.",
                              hint="Write one requirement per line, e.g. numpy>=1.26.")
        name, extras, spec = m.group(1), m.group(2) or "", m.group(3)
        packages[name + extras] = spec
    return {"packages": packages, "python": None}


def pyproject_toml_parser(text: str) -> dict[str, Any]:
    """Parse pyproject.toml text into ``{"packages": {name: spec}, "python": spec or None}``
    from ``[project] dependencies`` and ``requires-python``."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"pyproject.toml is not valid TOML: {e}.", hint="Fix the file's syntax.") from None
    project = data.get("project") or {}
    packages = requirements_txt_parser("\n".join(project.get("dependencies") or []))["packages"]
    return {"packages": packages, "python": project.get("requires-python")}
