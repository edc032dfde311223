"""Plugins on entry points: the example package (examples/plugin) installed with pip into a
temporary directory, then used from real flows, both CLIs and in process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowrun import FLOWS, USER, run_flow
from headwater import Flow, HeadwaterException, namespace
from headwater import plugins as hw_plugins
from headwater.plugins import PluginKind, PluginWarning, find_plugin, plugin_names
from headwater.store import codec_plugins

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin"


@pytest.fixture
def plugin_env(plugin_site) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def installed(plugin_site, monkeypatch):
    """The plugin package on this process's path, with the plugin scan forgotten before and after."""
    monkeypatch.syspath_prepend(str(plugin_site))
    hw_plugins._reset()
    codec_plugins._reset()
    yield plugin_site
    hw_plugins._reset()
    codec_plugins._reset()
    for name in [m for m in sys.modules if m.startswith("hw_example_plugin")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def plugin_run(plugin_site, tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin_run") / "store"
    env = {"PYTHONPATH": os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])}
    r = run_flow("plugin_flow.py", "--with", "stamp:label=seen", "--with", "timed", "--contact", "alice",
                 "run", root=root, env=env)
    assert r.returncode == 0, r.output
    return r


def _task(root: Path, flow: str, step: str, monkeypatch):
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(root))
    monkeypatch.setenv("HEADWATER_USER", USER)
    namespace(None)
    return Flow(flow).latest_run[step].task


def test_step_decorator_plugins_attach_with_dash_dash_with(plugin_run, installed, monkeypatch):
    task = _task(plugin_run.root, "PluginFlow", "start", monkeypatch)
    assert task["stamp"].data == "seen:start:0"
    assert isinstance(task["step_seconds"].data, float)
    assert "stamp: starting start (task 1, attempt 0)" in plugin_run.output


def test_flow_decorator_plugin_imported_from_headwater_adds_its_option(plugin_run):
    assert "owner: team ml, contact alice" in plugin_run.output


def test_codec_plugin_saves_and_loads_its_type_anywhere_in_an_artifact(plugin_run, installed, monkeypatch):
    from hw_example_plugin.geometry import Point

    task = _task(plugin_run.root, "PluginFlow", "start", monkeypatch)
    assert task["point"].data == Point(1.5, -2.0)  # Point refuses pickle: only the codec can save it
    assert task["points"].data == {"a": Point(0.0, 1.0)}
    assert "END 1.5 1.0 9.99" in plugin_run.output


def test_broken_plugin_is_named_in_a_warning_and_the_flow_still_runs(plugin_run, installed, monkeypatch):
    from decimal import Decimal

    assert "decimal.Decimal" in plugin_run.output
    assert "failed to load and is skipped" in plugin_run.output
    assert "broken on purpose" in plugin_run.output
    # Pickled as usual, so loading it needs no codec (and warns of nothing: warnings are errors here).
    assert _task(plugin_run.root, "PluginFlow", "start", monkeypatch)["price"].data == Decimal("9.99")


def test_card_type_plugin_renders(plugin_run, installed, monkeypatch):
    from headwater.cards import get_cards

    cards = get_cards(_task(plugin_run.root, "PluginFlow", "start", monkeypatch))
    assert "Hello from the plugin card" in cards[0].get()


def test_a_flow_that_uses_no_plugin_imports_none(plugin_env, tmp_path, monkeypatch):
    root = tmp_path / "store"
    r = run_flow("plain_flow.py", "run", root=root, env=plugin_env)
    assert r.returncode == 0, r.output
    assert _task(root, "PlainFlow", "end", monkeypatch)["plugin_modules"].data == []
    assert "PluginWarning" not in r.output


def test_launcher_plugin_is_chosen_by_headwater_launcher(plugin_env, tmp_path, monkeypatch):
    root = tmp_path / "store"
    r = run_flow("plain_flow.py", "run", root=root, env=plugin_env, launcher="example")
    assert r.returncode == 0, r.output
    assert "example launcher: starting" in r.output
    assert _task(root, "PlainFlow", "end", monkeypatch)["plugin_modules"].data == []


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_cli_plugins_join_both_command_lines(plugin_env):
    flow = str(FLOWS / "plugin_flow.py")
    described = _cli(flow, "describe", env=plugin_env)
    assert described.returncode == 0, described.stderr
    assert described.stdout.strip() == "PluginFlow: start, end"
    assert "describe" in _cli(flow, "--help", env=plugin_env).stdout
    hello = _cli("-m", "headwater.cli.main", "hello", "--name", "you", env=plugin_env)
    assert hello.stdout.strip() == "hello, you, from hw_example_plugin"
    listing = _cli("-m", "headwater.cli.main", "plugins", env=plugin_env).stdout
    assert "headwater.step_decorators:" in listing and "stamp" in listing
    assert "decimal.Decimal" in listing and "BROKEN (ImportError" in listing


def test_plugin_names_list_without_importing(installed):
    assert plugin_names(PluginKind.STEP_DECORATOR) == ["stamp", "timed"]
    assert plugin_names(PluginKind.CODEC) == ["decimal.Decimal", "hw_example_plugin.geometry.Point"]
    assert not [m for m in sys.modules if m.startswith("hw_example_plugin.")]


def test_find_plugin_loads_once_and_warns_once_for_a_broken_one(installed):
    from headwater.decorators import StepDecorator

    stamp = find_plugin(PluginKind.STEP_DECORATOR, "stamp")
    assert isinstance(stamp, type) and issubclass(stamp, StepDecorator)
    assert find_plugin(PluginKind.STEP_DECORATOR, "stamp") is stamp
    assert find_plugin(PluginKind.STEP_DECORATOR, "nope") is None
    with pytest.warns(PluginWarning, match=r"headwater.codecs plugin 'decimal.Decimal' .*broken on purpose"):
        assert find_plugin(PluginKind.CODEC, "decimal.Decimal") is None
    assert find_plugin(PluginKind.CODEC, "decimal.Decimal") is None  # no second warning (warnings are errors)


def test_plugin_decorators_import_from_headwater(installed):
    import headwater

    assert headwater.stamp.deco_cls.name == "stamp"
    with pytest.raises(AttributeError, match="no attribute 'no_such_plugin'"):
        headwater.no_such_plugin  # noqa: B018
    del headwater.stamp


def test_unknown_launcher_and_object_store_say_what_is_installed(installed):
    from headwater.runtime.launchers import make_launcher
    from headwater.store import open_object_store

    with pytest.raises(HeadwaterException, match="Unknown launcher 'nope'") as info:
        make_launcher("nope", None)  # type: ignore[arg-type]
    assert "example" in info.value.hint
    with pytest.raises(HeadwaterException, match=r"No object store handles 'gs://bucket/x' \(scheme 'gs'\)"):
        open_object_store("gs://bucket/x")


def test_reading_a_codec_artifact_without_the_plugin_names_the_type(plugin_run, monkeypatch):
    from headwater.exceptions import ArtifactError

    hw_plugins._reset()  # this process has no plugin installed
    codec_plugins._reset()
    try:
        task = _task(plugin_run.root, "PluginFlow", "start", monkeypatch)
        with pytest.raises(ArtifactError, match="holds a hw_example_plugin.geometry.Point saved by a codec plugin"):
            task["point"].data  # noqa: B018
    finally:
        hw_plugins._reset()
        codec_plugins._reset()


def test_metadata_provider_plugin_indexes_the_run_and_the_client_reads_through_it(plugin_env, tmp_path,
                                                                                  installed, monkeypatch):
    import json

    from headwater import Flow, default_metadata, get_metadata, metadata

    root = tmp_path / "store"
    r = run_flow("plain_flow.py", "--metadata=audit", "run", root=root, env=plugin_env)
    assert r.returncode == 0, r.output
    ops = [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]
    assert [o["op"] for o in ops][0] == "add_run" and ops[-1]["op"] == "end_run"
    assert ops[-1]["status"] == "successful"
    assert any(o["op"] == "upsert_attempts" and "end/2" in o["tasks"] for o in ops)
    monkeypatch.setenv("HEADWATER_USER", USER)
    try:
        assert metadata(f"audit@{root}") == f"audit@{root}"
        namespace(None)
        assert Flow("PlainFlow").latest_run.successful
        assert get_metadata().startswith("audit@")
    finally:
        default_metadata()
    # The run through the provider is the same run the local index sees (the records are the truth).
    assert _task(root, "PlainFlow", "end", monkeypatch)["plugin_modules"].data == []


def test_unknown_metadata_provider_lists_the_installed_ones(plugin_env, tmp_path):
    r = run_flow("plain_flow.py", "--metadata=nope", "run", root=tmp_path / "store", env=plugin_env)
    assert r.returncode == 2
    assert "--metadata=nope is not a valid value" in r.stderr and "local, audit" in r.stderr
    assert "Traceback" not in r.stderr


def test_secrets_provider_plugin_fills_the_task_environment(plugin_env, tmp_path, monkeypatch):
    secrets_file = tmp_path / "team.env"
    secrets_file.write_text("# team credentials\nTEAM_TOKEN=s3cr3t-value\n")
    flow = tmp_path / "envfile_flow.py"
    flow.write_text(
        "import os\n"
        "from headwater import FlowSpec, secrets, step\n\n"
        "class EnvFileFlow(FlowSpec):\n"
        f"    @secrets(sources=['envfile.{secrets_file}'])\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.token_length = len(os.environ['TEAM_TOKEN'])\n"
        "        self.next(self.end)\n\n"
        "    @step\n"
        "    def end(self):\n"
        "        self.leaked = 'TEAM_TOKEN' in os.environ\n\n"
        "if __name__ == '__main__':\n"
        "    EnvFileFlow()\n")
    root = tmp_path / "store"
    r = run_flow(flow, "run", root=root, env=plugin_env)
    assert r.returncode == 0, r.output
    assert _task(root, "EnvFileFlow", "start", monkeypatch)["token_length"].data == len("s3cr3t-value")
    assert _task(root, "EnvFileFlow", "end", monkeypatch)["leaked"].data is False
    assert "s3cr3t-value" not in r.output
