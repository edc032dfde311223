"""Cards rendered by real flows run through the CLI, read back with get_cards and ``python flow.py card``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowrun import FLOWS, USER, FlowRun, run_flow
from headwater.cards import get_cards
from headwater.exceptions import HeadwaterInvalidPathspec, HeadwaterNotFound


def _run_id(r: FlowRun) -> str:
    m = re.search(r"Workflow starting \(run-id (\w+)\)|as run-id (\w+):", r.output)
    assert m, r.output
    return m.group(1) or m.group(2)


def _task_id(root: Path, flow: str, run_id: str, step: str) -> str:
    ids = sorted(p.name for p in (root / "runs" / flow / run_id / step).iterdir())
    assert len(ids) == 1, ids
    return ids[0]


@dataclass
class CardRun:
    root: Path
    run: FlowRun
    run_id: str

    def pathspec(self, step: str) -> str:
        return f"CardFlow/{self.run_id}/{step}/{_task_id(self.root, 'CardFlow', self.run_id, step)}"

    def cli(self, *args: str, cwd: Path | None = None) -> FlowRun:
        return run_flow("card_flow.py", *args, root=self.root, cwd=cwd)


@pytest.fixture(scope="module")
def card_run(tmp_path_factory: pytest.TempPathFactory) -> CardRun:
    root = tmp_path_factory.mktemp("cards") / ".headwater"
    r = run_flow("card_flow.py", "run", "--alpha", "0.75", root=root)
    assert r.returncode == 0, r.output
    return CardRun(root, r, _run_id(r))


@pytest.fixture
def client(card_run: CardRun, use_root):
    use_root(card_run.root)
    return card_run


# -- the default card ----------------------------------------------------------------------------


def test_default_card_shows_task_parameters_artifacts_and_dag(client):
    cards = get_cards(client.pathspec("start"))
    assert [(c.type, c.id, c.name) for c in cards] == [("default", None, "default-0")]
    html = cards[0].get()
    assert html.startswith("<!DOCTYPE html>") and "<h1>CardFlow · start</h1>" in html
    assert client.pathspec("start") in html and "✓ succeeded" in html and "attempt 0" in html
    assert "Make artifacts of many kinds." in html  # the step's docstring
    params = re.search(r"<h2>Parameters</h2>(.*?)</section>", html, re.S).group(1)
    assert "<code>alpha</code>" in params and "0.75" in params and "&#x27;demo&#x27;" in params
    arts = re.search(r"<h2>Artifacts</h2>(.*?)</section>", html, re.S).group(1)
    names = re.findall(r'data-artifact="(\w+)"', arts)
    expected = ["config", "count", "items", "long_list", "long_text", "matrix", "png", "words"]
    if "frame" in names:  # when pandas is installed
        expected = sorted(expected + ["frame"])
    assert names == expected  # no parameters, no _private ones, no flow name
    assert '<code class="hw-inline">42</code>' in arts
    assert "shape (200, 3) · dtype float32" in arts
    assert "5,000 items" in arts and "more characters" in arts
    assert "data:image/png;base64,iVBORw0KGgo" in arts
    if "frame" in names:
        assert "<td>Lima</td>" in arts and '<td class="num">19.25</td>' in arts
    # the user's components come first, escaped
    assert "<h1>Start notes</h1>" in html and "&lt;b&gt;everywhere&lt;/b&gt;" in html
    assert "<td><div class=\"hw-md\"><p><em>one</em></p></div></td>" in html
    # the DAG, with this step highlighted
    svg = re.search(r"<h2>Flow graph</h2>(.*?)</section>", html, re.S).group(1)
    assert set(re.findall(r'data-step="(\w+)"', svg)) == {"start", "train", "join", "end"}
    assert '<g class="hw-node hw-current" data-step="start">' in svg and "foreach items" in svg
    # self-contained: no external resource, no Vega scripts without a chart
    assert not re.search(r'(src|href)="https?:', html) and "vegaEmbed" not in html


# -- blank card, live refresh -----------------------------------------------------------------------


def test_blank_card_shows_only_components(client):
    step = client.root / "runs" / "CardFlow" / client.run_id / "train"
    tasks = sorted(p.name for p in step.iterdir())
    assert len(tasks) == 3
    for t in tasks:
        (card,) = get_cards(f"CardFlow/{client.run_id}/train/{t}")
        html = card.get()
        assert card.type == "blank" and not card.live
        assert "3 / 3 (100%)" in html and "epochs" in html
        assert '<header class="hw-header"' not in html and "<h2>Artifacts</h2>" not in html
        assert not list((step / t / "0.cards" / "live").iterdir())  # live renders removed


def test_refresh_renders_live_and_is_rate_limited(client):
    from headwater import Flow, namespace

    namespace(None)
    for task in Flow("CardFlow")[client.run_id]["train"]:
        snaps = task.data.snapshots
        assert [len(s) for s in snaps] == [1, 1, 1]
        assert all(live for s in snaps for live, _ in s)
        first, second, third = (s[0][1] for s in snaps)
        assert "1 / 3 (33%)" in first
        assert second == first  # within refresh_interval: not re-rendered
        assert "3 / 3 (100%)" in third  # force=True


def test_live_card_is_visible_from_another_process_while_the_step_runs(tmp_path, use_root):
    root = tmp_path / ".headwater"
    gate = tmp_path / "gate"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_DATASTORE_ROOT=str(root), HEADWATER_USER=USER, HW_TEST_GATE=str(gate))
    proc = subprocess.Popen([sys.executable, str(FLOWS / "live_card_flow.py"), "run"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        use_root(root)
        deadline = time.time() + 60
        live = []
        while time.time() < deadline and not live:
            live = list(root.glob("runs/LiveCardFlow/*/start/*/0.cards/live/*.html"))
            time.sleep(0.05)
        assert live, "no live card appeared"
        run_id, task_id = live[0].parts[-6], live[0].parts[-4]
        (card,) = get_cards(f"LiveCardFlow/{run_id}/start/{task_id}")
        assert card.live and "1 / 2 (50%)" in card.get() and "● running" in card.get()
        assert "Artifacts appear when the task finishes." in card.get()
        gate.touch()
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        html = card.get()  # the same Card object follows to the final render
        assert not card.live and "2 / 2 (100%)" in html and "done" in html and "✓ succeeded" in html
        assert not list(live[0].parent.iterdir())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# -- several cards on one step, ids, custom and failing cards --------------------------------------


def test_several_cards_with_ids_in_reading_order(client):
    cards = get_cards(client.pathspec("end"))
    assert [(c.type, c.id) for c in cards] == [("default", "main"), ("blank", "extra"),
                                               ("summary_test", "summary"), ("error", None)]
    assert [c.name for c in get_cards(client.pathspec("end"), id="extra")] == ["blank-extra-1"]
    assert [c.name for c in get_cards(client.pathspec("end"), type="default")] == ["default-main-0"]
    assert len(get_cards(client.pathspec("end"), id="nope")) == 0


def test_current_card_by_id_and_component_update(client):
    main, extra = (c.get() for c in get_cards(client.pathspec("end"))[:2])
    assert "main card, updated" in main and "extra card" not in main
    assert "extra card" in extra and "main card" not in extra
    assert all("goes nowhere" not in c.get() and "nowhere either" not in c.get()
               for c in get_cards(client.pathspec("end")))
    out = client.run.output
    assert "current.card.append() ignored: step 'end' has 2 cards that take components" in out
    assert "current.card['nope']: step 'end' has no @card with id='nope'" in out


def test_custom_card_type(client):
    (summary,) = get_cards(client.pathspec("end"), id="summary")
    html = summary.get()
    assert f'<p id="summary">total=60 from {client.pathspec("end")}</p>' in html
    assert "<h1>Summary (cheerful)</h1>" in html


def test_failing_card_and_component_do_not_fail_the_task(client):
    from headwater import Task

    assert Task(client.pathspec("end"), _namespace_check=False).successful
    (err,) = get_cards(client.pathspec("end"), type="error")
    html = err.get()
    assert "The broken_test card of this task failed to render." in html
    assert "RuntimeError: this card always breaks" in html and "Traceback" in html
    assert "card_flow.py" in html and "call_with_timeout" not in html  # the user's frames, not headwater's
    (extra,) = get_cards(client.pathspec("end"), id="extra")
    html = extra.get()
    assert "The Exploding component failed to render" in html and "ValueError: component exploded" in html
    assert "after the explosion" in html  # the rest of the card still renders
    assert "the 'broken_test' card (broken_test-3) failed to render" in client.run.output


# -- reading cards back --------------------------------------------------------------------------------


def test_get_cards_from_another_cwd_through_the_client_root(card_run, tmp_path, monkeypatch, use_root):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    use_root(card_run.root)
    assert len(get_cards(card_run.pathspec("end"))) == 4
    monkeypatch.delenv("HEADWATER_DATASTORE_ROOT")
    import headwater

    headwater.metadata(f"local@{card_run.root}")
    try:
        (card,) = get_cards(card_run.pathspec("start"))
        assert card.path.startswith(str(card_run.root))
    finally:
        headwater.default_metadata()


def test_get_cards_of_a_task_object_and_notebook_html(client):
    from headwater import Task

    task = Task(client.pathspec("start"), _namespace_check=False)
    cards = get_cards(task)
    assert len(cards) == 1 and cards[0].pathspec == task.pathspec
    frame = cards._repr_html_()
    assert frame.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and "CardFlow · start" in frame
    assert Path(cards[0].view(open_browser=False)).read_text() == cards[0].get()


def test_get_cards_errors(client):
    with pytest.raises(HeadwaterNotFound, match=r"Task 'CardFlow/\w+/start/999' does not exist"):
        get_cards(f"CardFlow/{client.run_id}/start/999")
    with pytest.raises(HeadwaterInvalidPathspec, match="expected a pathspec 'FlowName/run_id/step_name/task_id'"):
        get_cards("CardFlow/1")
    with pytest.raises(HeadwaterInvalidPathspec, match="takes a Task or a task pathspec"):
        get_cards(42)


# -- the card CLI ------------------------------------------------------------------------------------------


def test_card_cli_list(client, tmp_path):
    r = client.cli("card", "list")
    assert r.returncode == 0, r.output
    lines = r.stderr.splitlines()  # the text listing goes to stderr, as Metaflow's
    assert lines[lines.index(f"Listing cards for run CardFlow/{client.run_id}"):][1:3] == ["Step : start", "\tTask: 1"]
    assert sum(1 for ln in lines if ln.startswith("\tTask: ")) == 5  # start, 3 x train, end
    doc = json.loads(client.cli("card", "list", f"{client.run_id}/end", "--as-json").stdout)
    assert doc["pathspec"] == client.pathspec("end")  # one task: Metaflow's {pathspec, cards}
    cards = doc["cards"]
    assert [(c["type"], c["id"]) for c in cards] == [("default", "main"), ("blank", "extra"),
                                                     ("summary_test", "summary"), ("error", None)]
    assert [c["filename"] for c in cards][:2] == ["default-main-0.html", "blank-extra-1.html"]
    assert all(set(c) == {"id", "hash", "type", "filename"} for c in cards)
    r = client.cli("card", "list", f"{client.run_id}/end")
    assert "Found 4 card matching for your query..." in r.stderr and "Card Hash: " + cards[0]["hash"] in r.stderr
    only = json.loads(client.cli("card", "list", f"CardFlow/{client.run_id}", "--type", "blank", "--as-json").stdout)
    assert {d["pathspec"].split("/")[2] for d in only} == {"train", "end"} and len(only) == 4  # a run: a list
    first = client.cli("card", "list", f"{client.run_id}/end", "--hash", cards[1]["hash"][:6], "--as-json")
    assert [c["id"] for c in json.loads(first.stdout)["cards"]] == ["extra"]
    out = tmp_path / "cards.json"
    r = client.cli("card", "list", f"{client.run_id}/end", "--as-json", "--file", str(out))
    assert r.returncode == 0 and r.stdout == "" and json.loads(out.read_text()) == doc
    r = client.cli("card", "list", f"{client.run_id}/end", "--type", "nosuch")
    assert r.returncode == 1 and "Card with type 'nosuch' not found for pathspec" in r.stderr


def test_card_cli_get_prints_or_writes(client, tmp_path):
    r = client.cli("card", "get", f"{client.run_id}/start")
    assert r.returncode == 0, r.output
    assert r.stdout == get_cards(client.pathspec("start"))[0].get()
    out = tmp_path / "card.html"
    r = client.cli("card", "get", client.pathspec("end"), str(out), "--id", "summary")
    assert r.returncode == 0, r.output
    assert "total=60" in out.read_text() and "Wrote card summary_test-summary-2" in r.stderr


def test_card_cli_get_and_view_list_several_matching_cards(client):
    end = client.pathspec("end")
    cards = get_cards(end)
    for command in ("get", "view"):
        r = client.cli("card", command, end)
        assert (r.returncode, r.stdout) == (0, ""), r.output  # as Metaflow: a listing, no card
        assert f"Resolving card: {end}\nFound 4 card matching for your query..." in r.stderr
        assert all(f"Card Hash: {c.hash}" in r.stderr for c in cards)
        task = end.split("/", 1)[1]
        assert f" >>> python card_flow.py card {command} {task} --hash {cards[0].hash[:5]}" in r.stderr
    r = client.cli("card", "get", end, "--hash", cards[1].hash[:6])
    assert r.returncode == 0 and r.stdout == cards[1].get()
    r = client.cli("card", "get", end, "--type", "blank", "--hash", cards[0].hash)
    assert r.returncode == 1 and f"has no card with type 'blank' and hash '{cards[0].hash}'" in r.stderr


def test_card_cli_view_no_open(client):
    r = client.cli("card", "view", client.pathspec("end"), "--id", "extra", "--no-open")
    assert r.returncode == 0, r.output
    path = Path(r.stdout.strip())
    assert path.is_file() and "after the explosion" in path.read_text()


@pytest.mark.parametrize("args, message", [
    (["get", "{run}/train"], r"step 'CardFlow/\w+/train' has 3 tasks \(\d+, \d+, \d+\); name one"),
    (["get", "{run}/start", "--id", "zzz"], r"Task 'CardFlow/\w+/start/\d+' has no card with id 'zzz'"),
    (["get", "{run}/join"], r"has no card\.\n\s+Hint: Add @card to the step"),
    (["get", "{run}/nostep/1"], r"Task 'CardFlow/\w+/nostep/1' does not exist"),
    (["get", "OtherFlow/{run}/start/1"], r"names the flow 'OtherFlow', but this is CardFlow"),
])
def test_card_cli_errors(client, args, message):
    r = client.cli("card", *[a.format(run=client.run_id) for a in args])
    assert r.returncode == 1
    assert re.search(message, r.stderr), r.stderr
    assert "Traceback" not in r.stderr


# -- --with card, failed tasks, resume, validation --------------------------------------------------------


def test_with_card_adds_a_default_card_to_every_step(tmp_path, use_root, launcher):
    root = tmp_path / ".headwater"
    r = run_flow("linear_flow.py", "--with", "card", "run", root=root, launcher=launcher)
    assert r.returncode == 0, r.output
    use_root(root)
    run_id = _run_id(r)
    for step in ("start", "middle", "end"):
        (card,) = get_cards(f"LinearFlow/{run_id}/{step}/{_task_id(root, 'LinearFlow', run_id, step)}")
        assert card.type == "default" and f"<h1>LinearFlow · {step}</h1>" in card.get()


def test_failed_task_still_gets_its_cards_and_resume_follows_clones(tmp_path, use_root):
    root = tmp_path / ".headwater"
    r = run_flow("card_fail_flow.py", "run", root=root, env={"HW_CARD_FAIL": "1"})
    assert r.returncode == 1, r.output
    use_root(root)
    run1 = _run_id(r)
    middle = f"CardFailFlow/{run1}/middle/{_task_id(root, 'CardFailFlow', run1, 'middle')}"
    default, slow = get_cards(middle)
    html = default.get()
    assert "✗ failed" in html and "ValueError: the step failed on purpose" in html
    # The failed attempt keeps its artifacts (here the inherited x), so its card lists them.
    assert "written before the failure" in html and "No artifacts." not in html
    assert slow.type == "error" and "RenderTimeout: Rendering took longer than the card&#x27;s timeout of 1 s" \
        in slow.get() and "Traceback" not in slow.get()

    r2 = run_flow("card_fail_flow.py", "resume", root=root)
    assert r2.returncode == 0, r2.output
    run2 = _run_id(r2)
    start2 = f"CardFailFlow/{run2}/start/{_task_id(root, 'CardFailFlow', run2, 'start')}"
    (card,) = get_cards(start2)
    assert card.pathspec.startswith(f"CardFailFlow/{run1}/start/") and "from the start step" in card.get()
    assert len(get_cards(start2, follow_resumed=False)) == 0


BAD_FLOW = '''
from headwater import FlowSpec, card, step


class BadCardFlow(FlowSpec):
    {decorators}
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BadCardFlow()
'''


@pytest.mark.parametrize("decorators, message", [
    ('@card(type="nope")', r"@card\(type='nope'\): there is no card type 'nope'.\n\s+Hint: Card types: blank, default"),
    ('@card(id="a")\n    @card(id="a", type="blank")', r"Step 'start' has two @card decorators with id='a'"),
    ('@card(id="bad id")', r"@card\(id='bad id'\): id must be a name of letters, digits and _"),
    ("@card(timeout=0)", r"@card\(timeout=0\): timeout must be more than 0 seconds"),
    ('@card(customize=True)\n    @card(type="blank", customize=True)', r"more than one @card with customize=True"),
    ('@card(colour="red")', r"@card has no attribute 'colour'"),
])
def test_bad_card_attributes_are_refused_before_the_run(tmp_path, decorators, message):
    flow = tmp_path / "bad_card_flow.py"
    flow.write_text(BAD_FLOW.format(decorators=decorators))
    r = run_flow(flow, "run", root=tmp_path / ".headwater")
    assert r.returncode == 1
    assert re.search(message, r.stderr), r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / ".headwater" / "runs").exists()


def test_cards_package_stays_above_the_runtime():
    """Cards render from the hook context alone: they never import the runtime or the CLI."""
    import ast

    src = Path(__file__).parents[2] / "src" / "headwater" / "cards"
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = {0: "", 1: "headwater.cards.", 2: "headwater."}[node.level]
                mods = [base + (node.module or "")]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for mod in mods:
                assert not any(mod == p or mod.startswith(p + ".") for p in ("headwater.runtime", "headwater.cli")), \
                    f"{path.name} imports {mod}"
