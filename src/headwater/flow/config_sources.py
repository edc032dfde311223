"""Where config values come from (authoring layer): ``--config`` / ``--config-value``,
the ``HEADWATER_FLOW_CONFIG*`` environment variables, then each config's defaults;
and how a config's text becomes its value (its parser, else JSON).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from .config import Config, ConfigError, flow_configs
from .parameters import ParameterContext

#: Environment variables read when ``--config`` / ``--config-value`` are not given (as Metaflow's
#: METAFLOW_FLOW_CONFIG / METAFLOW_FLOW_CONFIG_VALUE): a JSON object name -> path / name -> value.
ENV_CONFIG_FILES = "HEADWATER_FLOW_CONFIG"
ENV_CONFIG_VALUES = "HEADWATER_FLOW_CONFIG_VALUE"


def _env_pairs(env: Mapping[str, str], var: str) -> list[tuple[str, str]]:
    text = env.get(var)
    if not text:
        return []
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise ConfigError(f"{var}={text!r} is not a JSON object ({e}).",
                          hint=f"Set {var} to a JSON object such as '{{\"cfg\": ...}}'.") from None
    return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()]


def _read_file(path: str, what: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path!r} ({e.strerror}).",
                          hint="Pass the path of an existing, readable file.") from None


def load_parser(parser: str | Callable[[str], Any], config_name: str) -> Callable[[str], Any]:
    """The parser function for ``parser`` (a callable or a dotted name)."""
    if callable(parser):
        return parser
    name = "headwater" + parser if parser.startswith(".") else parser
    module, _, func = name.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), func, None) if module else None
    except ImportError as e:
        fn = None
        why = f"cannot import {module!r} ({e})"
    else:
        why = f"{module!r} has no function {func!r}"
    if not callable(fn):
        raise ConfigError(f"Config {config_name!r}: parser {parser!r} not found: {why}.",
                          hint="Give parser= a function, or the dotted name of one (package.module.function).")
    return fn


def parse_config(cfg: Config, text: str, source: str) -> Any:
    """The value of config ``cfg`` from ``text`` (its parser, else JSON)."""
    if cfg.parser is not None:
        fn = load_parser(cfg.parser, cfg.name)
        try:
            value = fn(text)
        except Exception as e:
            raise ConfigError(f"Config {cfg.name!r} ({source}): parser failed: {type(e).__name__}: {e}.",
                              hint="Fix the config's text, or its parser.") from None
    elif cfg.plain:
        return text
    else:
        try:
            value = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"Config {cfg.name!r} ({source}) is not valid JSON: {e}.",
                              hint="Give a JSON object, e.g. --config-value cfg '{\"a\": 1}', "
                                   "or set parser= on the Config.") from None
    if not cfg.plain and not isinstance(value, Mapping):
        raise ConfigError(f"Config {cfg.name!r} ({source}) is a {type(value).__name__}, not a mapping.",
                          hint="A config's value must be an object (dict); use plain=True for any other type.")
    return dict(value) if isinstance(value, Mapping) and not cfg.plain else value


def resolve_configs(
    flow_cls: type,
    *,
    files: Sequence[tuple[str, str]] = (),
    values: Sequence[tuple[str, str]] = (),
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """Raw values of the flow's configs by name: ``values``/``files`` (else the
    environment's), then each config's default. ``ConfigError`` names what is wrong."""
    env = os.environ if env is None else env
    configs = {c.name: c for c in flow_configs(flow_cls)}
    files = list(files) or _env_pairs(env, ENV_CONFIG_FILES)
    values = list(values) or _env_pairs(env, ENV_CONFIG_VALUES)
    known = ", ".join(sorted(configs)) or "none"
    for name, _ in [*files, *values]:
        if name not in configs:
            raise ConfigError(f"Flow {flow_cls.__name__} has no config called {name!r}.",
                              hint=f"Configs of {flow_cls.__name__}: {known}.")
    given_files, given_values = dict(files), dict(values)
    both = sorted(set(given_files) & set(given_values))
    if both:
        raise ConfigError(f"Config {both[0]!r} was given both a file and a value.",
                          hint="Use --config or --config-value for it, not both.")
    out: dict[str, Any] = {}
    for name, cfg in configs.items():
        ctx = ParameterContext(flow_cls.__name__, user or "", name)
        if name in given_values:
            out[name] = parse_config(cfg, given_values[name], "from --config-value")
        elif name in given_files:
            path = given_files[name]
            out[name] = parse_config(cfg, _read_file(path, f"Config {name!r}"), f"file {path!r}")
        elif cfg.default_path is not None:
            path = cfg.default_path(ctx) if callable(cfg.default_path) else cfg.default_path
            out[name] = parse_config(cfg, _read_file(path, f"Config {name!r}: default file"), f"file {path!r}")
        elif cfg.default_value is not None:
            default = cfg.default_value(ctx) if callable(cfg.default_value) else cfg.default_value
            # A dict default goes through the same path as text (a plain config gets the JSON text).
            text = default if isinstance(default, str) else json.dumps(default)
            out[name] = parse_config(cfg, text, "default_value")
        elif cfg.required:
            raise ConfigError(f"Config {name!r} is required, but no value was given.",
                              hint=f"Pass --config {name} PATH or --config-value {name} JSON before the command.")
        else:
            out[name] = None
    return out
