"""Build and check docs/compat.md: Metaflow's surface, one row per item, with headwater's status.

The rows come from introspecting Metaflow (``surface.py`` run with its Python): top-level
names, step and flow decorators with their attributes, every command and option of
``python flow.py``, and the client classes' members. The status column is written by
people; this module only proposes one for new rows and checks the ones written:

- ``same`` (optionally ``same (issue N)``): headwater has it (for a decorator attribute, with
  the same default);
- ``differs: how``: headwater has its own take, described in the cell;
- ``not yet: #N what`` / ``not planned: why``: headwater lacks it.

``python tests/compat/compat_table.py --write`` regenerates the table below the marker,
keeping every status already written and proposing one for new rows (and flipping
``not yet`` rows to ``same`` once headwater has the item). ``test_compat_table.py`` fails
when the file and the two engines disagree.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC = Path(__file__).parents[2] / "docs" / "compat.md"
MARKER = "<!-- Generated below by tests/compat/compat_table.py --write: edit only the headwater column. -->"

SECTIONS = {
    "names": "Top-level names (`from metaflow import ...`)",
    "step": "Step decorators and their attributes (Metaflow column: the default)",
    "flow": "Flow decorators and their attributes (Metaflow column: the default)",
    "cli": "CLI: `python flow.py [options] COMMAND [options]`",
    "client": "Client classes: public members",
    "exceptions": "Exceptions (`metaflow.exception`; headwater: `headwater.exceptions`, `Metaflow` in a name "
                  "becomes `Headwater`)",
}
STATUSES = ("same", "differs", "not yet", "not planned")

# Where a missing item is planned (issue numbers in the tracker); first match wins.
_PLANS: list[tuple[str, str]] = [
    (r"batch|spot.metadata", "not planned: AWS Batch (headwater scales out on Kubernetes and Ray)"),
    (r"step.functions|airflow", "not yet: no issue (Step Functions and Airflow deployers follow Argo, #10)"),
    (r"^(R|tuple_util)$", "not planned: R support"),
    (r"^(EXT_PKG|unbounded_test_foreach_internal|@unbounded_test_foreach_internal)$",
     "not planned: Metaflow-internal helper"),
    (r"^(step|init)\b", "not yet: #10 (orchestrators start tasks with Metaflow's `step`/`init` arguments)"),
    (r"^(Config|ConfigValue|config_expr|yaml_parser|parallel_map|parallel_imap_unordered|profile|"
     r"StepMutator|FlowMutator|UserStepDecorator|user_step_decorator|USER_SKIP_STEP)$|"
     r"^@?(project|parallel|secrets|exit_hook)\b|--(metadata|datastore|environment|event-logger|monitor|pylint|"
     r"no-pylint)$|^(run|resume) --with$|^tag list --flat$|^output-dot$|^version$|^card (view|get)$",
     "not yet: #7"),
    (r"S3|--datastore|s3", "not yet: #9 (S3)"),
    (r"kubernetes|argo|Deploy|schedule|trigger|namespaced_event_name", "not yet: #10"),
    (r"pypi|conda|requirements_txt|pyproject_toml|environment_yml|package", "not yet: #11"),
]


@dataclass(frozen=True)
class Row:
    section: str
    key: str
    metaflow: str


def rows(mf: dict[str, Any]) -> list[Row]:
    """One row per item of Metaflow's surface, in a stable order."""
    out = [Row("names", n, "") for n in mf["names"]]
    for section, field in (("step", "step_decorators"), ("flow", "flow_decorators")):
        for deco, attrs in sorted(mf[field].items()):
            out.append(Row(section, f"@{deco}", ""))
            out += [Row(section, f"@{deco}.{a}", d) for a, d in sorted(attrs.items())]
    for path, cmd in sorted(mf["cli"].items()):
        if path:
            out.append(Row("cli", path, "hidden" if cmd["hidden"] else ""))
        for opt, hidden in sorted(cmd["options"].items()):
            if opt != "--help":
                out.append(Row("cli", f"{path or '(top)'} {opt}", "hidden" if hidden else ""))
    for cls, members in sorted(mf["client"].items()):
        out += [Row("client", f"{cls}.{m}", "") for m in members]
    out += [Row("exceptions", n, "") for n in mf["exceptions"]]
    return out


def headwater_has(hw: dict[str, Any], row: Row) -> str | None:
    """``"same"`` when headwater has the item as Metaflow does, ``"differs"`` when it has it otherwise,
    None when it lacks it."""
    if row.section == "names":
        return "same" if row.key in hw["names"] else None
    if row.section in ("step", "flow"):
        decos = hw["step_decorators" if row.section == "step" else "flow_decorators"]
        deco, _, attr = row.key[1:].partition(".")
        if deco not in decos or "__error__" in decos[deco]:
            return None
        if not attr:
            return "same"
        if attr not in decos[deco]:
            return None
        return "same" if decos[deco][attr] == row.metaflow else "differs"
    if row.section == "cli":
        path, _, opt = row.key.rpartition(" ") if " --" in f" {row.key}" else (row.key, "", "")
        path = "" if path == "(top)" else path
        cmd = hw["cli"].get(path)
        if cmd is None:
            return None
        return "same" if not opt or opt in cmd["options"] else None
    if row.section == "exceptions":
        return "same" if row.key in hw["exceptions"] else None
    cls, _, member = row.key.partition(".")
    return "same" if member in hw["client"].get(cls, ()) else None


def propose(hw: dict[str, Any], row: Row) -> str:
    has = headwater_has(hw, row)
    if has == "same":
        return "same"
    if has == "differs":
        return "differs: another default"
    for pattern, status in _PLANS:
        if re.search(pattern, row.key):
            return status
    return "not yet: no issue"


_ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<mf>.*?) \| (?P<status>.*) \|$")


def parse(text: str) -> dict[tuple[str, str], str]:
    """``(section, key) -> status`` for every table row below the marker."""
    out: dict[tuple[str, str], str] = {}
    titles = {v: k for k, v in SECTIONS.items()}
    section = None
    for line in text.split(MARKER, 1)[-1].splitlines():
        if line.startswith("## "):
            section = titles.get(line[3:].strip())
        m = _ROW.match(line)
        if m and section:
            out[(section, m["key"])] = m["status"].strip()
    return out


def render(mf: dict[str, Any], hw: dict[str, Any], text: str) -> str:
    """``text`` with the generated part rebuilt: written statuses kept, new rows proposed."""
    old = parse(text)
    head = text.split(MARKER, 1)[0].rstrip() + "\n\n" if MARKER in text else text.rstrip() + "\n\n"
    lines = [head + MARKER]
    current = None
    for row in rows(mf):
        if row.section != current:
            current = row.section
            lines += ["", f"## {SECTIONS[current]}", "", "| Item | Metaflow 2.19 | headwater |", "|---|---|---|"]
        status = old.get((row.section, row.key)) or propose(hw, row)
        if status.startswith("not yet") and headwater_has(hw, row) == "same":
            issue = re.match(r"not yet: #(\d+)", status)
            status = f"same (issue {issue[1]})" if issue else "same"
        metaflow = f"`{row.metaflow}`" if row.metaflow and row.metaflow != "hidden" else row.metaflow
        lines.append(f"| `{row.key}` | {metaflow} | {status} |")
    return "\n".join(lines) + "\n"


def problems(mf: dict[str, Any], hw: dict[str, Any], text: str) -> list[str]:
    """Everything in ``text`` that disagrees with the two engines (empty when all is well)."""
    written = parse(text)
    wanted = {(r.section, r.key): r for r in rows(mf)}
    out = [f"missing row: {SECTIONS[s]} / {k}" for (s, k) in wanted if (s, k) not in written]
    out += [f"row for something Metaflow does not have: {SECTIONS[s]} / {k}" for (s, k) in written
            if (s, k) not in wanted]
    for key, status in written.items():
        row = wanted.get(key)
        if row is None:
            continue
        kind = next((s for s in STATUSES if status.startswith(s)), None)
        has = headwater_has(hw, row)
        if kind is None:
            out.append(f"{row.key}: status {status!r} must start with one of {', '.join(STATUSES)}")
        elif kind == "same" and has != "same":
            out.append(f"{row.key}: says 'same' but headwater " + ("has another default" if has else "lacks it"))
        elif kind in ("not yet", "not planned") and has == "same":
            out.append(f"{row.key}: says {kind!r} but headwater has it now: make it 'same' (--write does)")
        elif kind == "differs" and has is None and row.section in ("step", "flow"):
            out.append(f"{row.key}: says 'differs' but headwater lacks it: make it 'not yet'")
    return out


def surfaces() -> tuple[dict[str, Any], dict[str, Any]]:
    """Metaflow's and headwater's surfaces, each read by its own Python (outside pytest)."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from compat.harness import default_cache_dir, find_or_make_metaflow_python, headwater_engine, metaflow_engine

    python = find_or_make_metaflow_python(default_cache_dir())
    with tempfile.TemporaryDirectory(prefix="compat-table-") as tmp:
        return read_surfaces(metaflow_engine(python, Path(tmp) / "mf"), headwater_engine(Path(tmp) / "hw"))


def read_surfaces(mf_engine: Any, hw_engine: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    from compat.harness import SURFACE

    mf = mf_engine.script(SURFACE, str(mf_engine.flow_file("hello_flow.py")))
    wanted = json.dumps({"step": sorted(mf["step_decorators"]), "flow": sorted(mf["flow_decorators"])})
    hw = hw_engine.script(SURFACE, str(hw_engine.flow_file("hello_flow.py")), wanted)
    return mf, hw


def main(argv: list[str]) -> int:
    mf, hw = surfaces()
    text = DOC.read_text() if DOC.exists() else ""
    if "--write" in argv:
        DOC.write_text(render(mf, hw, text))
        text = DOC.read_text()
    found = problems(mf, hw, text)
    print("\n".join(found) or f"{DOC.name} agrees with Metaflow and headwater.")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
