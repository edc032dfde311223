"""Config / ConfigValue / config_expr: where values come from, where they can be used,
how they are recorded, and the errors for bad input (real flows through the CLI)."""

from __future__ import annotations

import json
import re

import pytest

from flowrun import run_flow
from headwater import Config, ConfigValue, FlowSpec, config_expr, step
from headwater.flow.config import ConfigError, apply_configs
from headwater.flow.config_sources import resolve_configs

NEW_CFG = {"retries": 0, "greeting": "hey", "mode": "turbo", "train": {"lr": 0.5}}


def _task(root, use_root, step_name="start"):
    from headwater import Flow

    use_root(root)
    run = Flow("ConfigFlow").latest_run
    return run, run[step_name].task


def test_defaults_reach_steps_decorators_parameters_and_switch(tmp_path, launcher, use_root):
    root = tmp_path / ".headwater"
    r = run_flow("config_flow.py", "run", root=root, launcher=launcher)
    assert r.returncode == 0, r.output
    run, task = _task(root, use_root)
    seen = task.data.seen
    assert seen == {"cfg_type": "ConfigValue", "lr": 0.1, "lr_item": 0.1, "kv": {"alpha": "1", "beta": "2"},
                    "raw": "just text", "opt": None, "greeting": "hi", "env_mode": "fast",
                    "attempt": 1,  # @retry(times=config_expr("cfg.retries")) gave one retry
                    "scaled": 10}  # a callable default read ctx.configs
    assert task.data.assign_error == "Flow level attributes and Parameters are not modifiable"  # as Metaflow
    assert task.data.nested_error == "ConfigValue is immutable"
    assert run["fast"].task.data.path == "fast"
    # Recorded with the run as Metaflow shows them: plain values, by attribute name.
    end = run["end"].task
    assert end["cfg"].data == {"retries": 1, "greeting": "hi", "mode": "fast", "train": {"lr": 0.1}}
    assert type(end["cfg"].data) is dict
    assert end["raw"].data == "just text" and end["opt"].data is None
    assert end.data.end_lr == 0.1


def test_file_and_value_options_override_defaults(tmp_path, use_root):
    root = tmp_path / ".headwater"
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(NEW_CFG))
    r = run_flow("config_flow.py", "--config", "cfg", str(path), "--config-value", "kv", "gamma=3",
                 "--config-value", "opt", '{"on": true}', "run", root=root)
    assert r.returncode == 0, r.output
    run, task = _task(root, use_root)
    seen = task.data.seen
    assert (seen["lr"], seen["greeting"], seen["env_mode"], seen["attempt"], seen["scaled"]) == (
        0.5, "hey", "turbo", 0, 0)
    assert seen["kv"] == {"gamma": "3"} and seen["opt"] == {"on": True}
    # The switch key self.cfg.mode was read from the config: "turbo" went to the fast step.
    assert [s.id for s in run] == ["end", "fast", "start"]


def test_environment_variables_supply_configs(tmp_path, use_root):
    root = tmp_path / ".headwater"
    path = tmp_path / "kv.txt"
    path.write_text("delta=4\n")
    env = {"HEADWATER_FLOW_CONFIG_VALUE": json.dumps({"cfg": NEW_CFG}),
           "HEADWATER_FLOW_CONFIG": json.dumps({"kv": str(path)})}
    r = run_flow("config_flow.py", "run", root=root, env=env)
    assert r.returncode == 0, r.output
    _, task = _task(root, use_root)
    assert task.data.seen["greeting"] == "hey" and task.data.seen["kv"] == {"delta": "4"}


def test_resume_reapplies_the_origin_configs_and_refuses_new_ones(tmp_path, launcher, use_root):
    root = tmp_path / ".headwater"
    r1 = run_flow("config_flow.py", "--config-value", "cfg", json.dumps(NEW_CFG), "run", root=root,
                  launcher=launcher, env={"HW_FAIL_END": "1"})
    assert r1.returncode == 1
    r2 = run_flow("config_flow.py", "--config-value", "cfg", "{}", "resume", root=root, launcher=launcher)
    assert r2.returncode == 2
    assert "--config and --config-value cannot be given with resume" in r2.stderr
    assert "Traceback" not in r2.stderr
    r3 = run_flow("config_flow.py", "resume", root=root, launcher=launcher)
    assert r3.returncode == 0, r3.output
    run, _ = _task(root, use_root, "end")
    assert run.data.end_lr == 0.5  # the origin's config, not the default (0.1)
    assert run["end"].task["cfg"].data == NEW_CFG
    assert [s.id for s in run] == ["end", "fast", "start"]


@pytest.mark.parametrize("args, message", [
    (["--config-value", "cfg", "{bad"], r"Config 'cfg' \(from --config-value\) is not valid JSON"),
    (["--config-value", "cfg", "[1, 2]"], r"Config 'cfg' \(from --config-value\) is a list, not a mapping"),
    (["--config", "cfg", "missing.json"], r"Config 'cfg': cannot read 'missing.json'"),
    (["--config-value", "nope", "{}"], r"Flow ConfigFlow has no config called 'nope'.\n.*Configs of ConfigFlow: "
                                       r"cfg, kv, opt, raw"),
    (["--config-value", "cfg", "{}", "--config", "cfg", "x.json"], r"Config 'cfg' was given both a file and a value"),
])
def test_bad_config_input_is_a_clear_error(tmp_path, args, message):
    r = run_flow("config_flow.py", *args, "run", root=tmp_path / ".headwater")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "Bad config" in r.stderr
    assert re.search(message, r.stderr), r.stderr


def test_bad_environment_variable_is_a_clear_error(tmp_path):
    r = run_flow("config_flow.py", "run", root=tmp_path / ".headwater",
                 env={"HEADWATER_FLOW_CONFIG_VALUE": "not json"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "HEADWATER_FLOW_CONFIG_VALUE='not json' is not a JSON object" in r.stderr


def test_help_lists_the_config_options(tmp_path):
    r = run_flow("config_flow.py", "--help", root=tmp_path / ".headwater")
    assert r.returncode == 0
    assert "--config NAME PATH" in r.stdout and "--config-value NAME VALUE" in r.stdout


# ---- in-process units -------------------------------------------------------------------------

def _flow(**configs: Config) -> type:
    ns = dict(configs)

    def start(self):
        self.next(self.end)

    def end(self):
        pass

    ns.update(start=step(start), end=step(end))
    return type("UnitFlow", (FlowSpec,), ns)


def test_config_value_is_a_read_only_mapping():
    v = ConfigValue({"a": {"b": [1, {"c": 2}]}, "n": 1})
    assert v.a.b[1].c == 2 and v["a"]["b"][0] == 1
    assert dict(v) == {"a": v.a, "n": 1} and v == {"a": {"b": [1, {"c": 2}]}, "n": 1}
    assert isinstance(v, dict) and json.loads(json.dumps(v)) == v  # as Metaflow's, a dict subclass
    assert type(v.a.b[1]) is ConfigValue and type(v.copy()) is ConfigValue
    assert v.to_dict() == {"a": {"b": [1, {"c": 2}]}, "n": 1} and type(v.to_dict()["a"]) is dict
    with pytest.raises(TypeError, match="immutable"):
        v.n = 2
    with pytest.raises(TypeError, match="immutable"):
        v["n"] = 2
    with pytest.raises(TypeError, match="immutable"):
        v.update(n=2)
    with pytest.raises(AttributeError, match="no key 'zz'"):
        v.zz
    import pickle

    assert pickle.loads(pickle.dumps(v)) == v


def test_required_default_file_and_parser_names():
    cls = _flow(req=Config("req", required=True))
    with pytest.raises(ConfigError, match="Config 'req' is required"):
        resolve_configs(cls, env={})
    cls = _flow(dflt=Config("dflt", default="/no/such/file.json"))
    with pytest.raises(ConfigError, match=r"default file: cannot read '/no/such/file.json'"):
        resolve_configs(cls, env={})
    cls = _flow(p=Config("p", default_value="x", parser="json.no_such_function"))
    with pytest.raises(ConfigError, match=r"parser 'json.no_such_function' not found"):
        resolve_configs(cls, env={})
    cls = _flow(p=Config("p", default_value='{"a": 1}', parser="json.loads"))
    assert resolve_configs(cls, env={}) == {"p": {"a": 1}}
    with pytest.raises(ConfigError, match="both default= and default_value="):
        Config("x", default="a.json", default_value={})


def test_a_missing_key_in_a_decorator_is_reported_when_applied():
    from headwater import retry

    cfg = Config("cfg", default_value={"a": 1})

    def start(self):
        self.next(self.end)

    def end(self):
        pass

    cls = type("KeyFlow", (FlowSpec,), {"cfg": cfg, "start": retry(times=cfg.nope)(step(start)), "end": step(end)})
    with pytest.raises(ConfigError, match=r"cfg.nope does not exist: config 'cfg' has no 'nope' there"):
        apply_configs(cls, resolve_configs(cls, env={}))


def test_config_expr_errors_name_the_expression():
    cls = _flow(cfg=Config("cfg", default_value={"a": 1}))
    apply_configs(cls, resolve_configs(cls, env={}))
    assert config_expr("cfg.a + 1").resolve({"cfg": ConfigValue({"a": 1})}) == 2
    with pytest.raises(ConfigError, match=r"config_expr\('cfg.b'\) failed: AttributeError"):
        config_expr("cfg.b").resolve({"cfg": ConfigValue({"a": 1})})


def test_parsers():
    from headwater import pyproject_toml_parser, requirements_txt_parser

    assert requirements_txt_parser("numpy>=1.26  # pinned\n\nrequests[socks]==2.0\n") == {
        "packages": {"numpy": ">=1.26", "requests[socks]": "==2.0"}, "python": None}
    with pytest.raises(ConfigError, match="options such as '-r' are not supported"):
        requirements_txt_parser("-r other.txt")
    text = '[project]\nrequires-python = ">=3.10"\ndependencies = ["click>=8"]\n'
    assert pyproject_toml_parser(text) == {"packages": {"click": ">=8"}, "python": ">=3.10"}
    yaml = pytest.importorskip("yaml")
    del yaml
    from headwater import yaml_parser

    assert yaml_parser("a:\n  b: 1\n") == {"a": {"b": 1}}
