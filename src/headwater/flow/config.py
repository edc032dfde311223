"""``Config``, ``ConfigValue`` and ``config_expr``: flow configuration fixed before
anything runs (authoring layer).

A config is read once when the command line starts (``--config NAME PATH``,
``--config-value NAME JSON``, ``HEADWATER_FLOW_CONFIG*``, then its defaults),
then *applied* to the flow class: expressions such as ``@resources(cpu=cfg.cpu)``
or ``Parameter("x", default=cfg.x)`` written in the class body are replaced by
their values. Inside steps ``self.cfg`` is a read-only ``ConfigValue``; the raw
values are stored with the run (artifacts of ``_parameters``) so tasks in other
processes and ``resume`` apply exactly the same values again.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable

from ..exceptions import HeadwaterException
from .parameters import Parameter, ParameterContext, builtin_type

#: Environment variables read when ``--config`` / ``--config-value`` are not given (as Metaflow's
#: METAFLOW_FLOW_CONFIG / METAFLOW_FLOW_CONFIG_VALUE): a JSON object name -> path / name -> value.
ENV_CONFIG_FILES = "HEADWATER_FLOW_CONFIG"
ENV_CONFIG_VALUES = "HEADWATER_FLOW_CONFIG_VALUE"

# Where a flow class keeps its applied config values (name -> ConfigValue or plain value).
_APPLIED = "_hw_configs"
_APPLIED_RAW = "_hw_configs_raw"


class ConfigError(HeadwaterException):
    """A config could not be read, parsed or used."""

    headline = "Bad config"
    exit_code = 2


# ---------------------------------------------------------------------------------------
# ConfigValue
# ---------------------------------------------------------------------------------------

def _freeze(value: Any) -> Any:
    # Lists, tuples and sets keep their type (as in Metaflow); the mappings inside become ConfigValues.
    if isinstance(value, Mapping) and not isinstance(value, ConfigValue):
        return ConfigValue(value)
    if isinstance(value, (list, tuple, set)):
        return type(value)(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, ConfigValue):
        return value.to_dict()
    if isinstance(value, (list, tuple, set)):
        return type(value)(_thaw(v) for v in value)
    return value


class ConfigValue(dict):  # a dict subclass, as Metaflow's: json.dumps and isinstance(v, dict) work
    """A read-only mapping with attribute access: the value of a (non-plain) ``Config``.

    Nested mappings are ``ConfigValue`` too; any attempt to change one raises
    ``TypeError`` (a list inside can be changed in place, but the change is not
    kept past the step). ``to_dict()`` gives a plain, mutable copy.

    Examples
    --------
    >>> v = ConfigValue({"model": {"layers": 3}})
    >>> v.model.layers, v["model"]["layers"]
    (3, 3)
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        dict.__init__(self, ((k, _freeze(v)) for k, v in data.items()))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"Config has no key {name!r} (keys: {', '.join(map(str, self))})") from None

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ConfigValue is immutable")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = __ior__ = _immutable
    clear = pop = popitem = setdefault = update = _immutable
    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> "ConfigValue":
        return ConfigValue(self)

    @classmethod
    def fromkeys(cls, keys: Any, value: Any = None) -> "ConfigValue":
        return cls(dict.fromkeys(keys, value))

    def to_dict(self) -> dict[str, Any]:
        """A plain ``dict`` copy (nested values as dicts and lists)."""
        return {k: _thaw(v) for k, v in self.items()}

    def __reduce__(self) -> Any:
        return (ConfigValue, (self.to_dict(),))

    def __repr__(self) -> str:
        return repr(self.to_dict())


# ---------------------------------------------------------------------------------------
# Deferred expressions: config values used in the class body
# ---------------------------------------------------------------------------------------

class _Deferred:
    """A value that only exists once the configs are known."""

    _hw_deferred = True  # how parameters.py recognises one without importing this module

    def resolve(self, values: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class ConfigPath(_Deferred):
    """``cfg.a["b"]`` written in the class body: a path into the value of one config."""

    is_step = False  # probed on class attributes; never a deferred path

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(f"{self!r} has no value until the configs are read; it cannot be iterated.")

    def __init__(self, config: "Config", path: tuple[tuple[str, Any], ...] = ()) -> None:
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> "ConfigPath":
        if name.startswith("__"):
            raise AttributeError(name)
        return ConfigPath(self._config, self._path + (("attr", name),))

    def __getitem__(self, key: Any) -> "ConfigPath":
        return ConfigPath(self._config, self._path + (("item", key),))

    def resolve(self, values: Mapping[str, Any]) -> Any:
        value = values.get(self._config.name)
        for kind, key in self._path:
            try:
                value = getattr(value, key) if kind == "attr" else value[key]
            except (AttributeError, KeyError, IndexError, TypeError):
                raise ConfigError(
                    f"{self!r} does not exist: config {self._config.name!r} has no {key!r} there.",
                    hint=f"Check the keys of config {self._config.name!r}, or the expression in the flow.",
                ) from None
        return value

    def __repr__(self) -> str:
        text = self._config.attr_name
        for kind, key in self._path:
            text += f".{key}" if kind == "attr" else f"[{key!r}]"
        return text


class ConfigExpr(_Deferred):
    """The value of ``config_expr(...)``: a Python expression evaluated once configs are known."""

    def __init__(self, expr: str, scope: Mapping[str, Any] | None = None) -> None:
        self.expr = expr
        self.scope = scope if scope is not None else {}  # live: names defined later in the module count

    def resolve(self, values: Mapping[str, Any]) -> Any:
        names = dict(self.scope)
        names.update(values)
        try:
            return eval(self.expr, names)  # noqa: S307 - the flow's own source, as written by its author
        except Exception as e:
            raise ConfigError(
                f"config_expr({self.expr!r}) failed: {type(e).__name__}: {e}.",
                hint="The expression may use the flow's configs by name and the module's globals.",
            ) from None

    def __repr__(self) -> str:
        return f"config_expr({self.expr!r})"


def config_expr(expr: str) -> ConfigExpr:
    """A Python expression over the flow's configs, evaluated when the configs are known.

    Use it where a config is not in scope, e.g. in a decorator applied outside the
    class body or written with the config's name.

    Parameters
    ----------
    expr : str
        The expression, e.g. ``"cfg.train.retries"``; it may use the configs by name
        (attribute name or config name) and the calling module's globals.

    Examples
    --------
    >>> @retry(times=config_expr("cfg.retries"))  # doctest: +SKIP
    ... @step
    ... def start(self): ...
    """
    caller = sys._getframe(1).f_globals
    return ConfigExpr(expr, caller)


def is_deferred(value: Any) -> bool:
    """Whether ``value`` (or anything inside a list, tuple, set or dict in it) waits for configs."""
    if isinstance(value, _Deferred):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_deferred(v) for v in value)
    if isinstance(value, dict):
        return any(is_deferred(k) or is_deferred(v) for k, v in value.items())
    return False


def resolve_deferred(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every deferred expression replaced by its value (ConfigValues as dicts)."""
    if isinstance(value, _Deferred):
        return _thaw(value.resolve(values))
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(resolve_deferred(v, values) for v in value)
    if isinstance(value, dict):
        return {resolve_deferred(k, values): resolve_deferred(v, values) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------

class Config(Parameter):
    """Configuration of a flow, fixed before the flow is processed.

    Unlike a ``Parameter`` a config can be used anywhere in the class body (in
    decorator arguments, parameter defaults, switch keys). Its value is a
    read-only ``ConfigValue`` inside steps (the parser's value as is with
    ``plain=True``).

    Parameters
    ----------
    name : str
        The config's name on the command line (``--config NAME PATH``).
    default : str or callable, optional
        Path of the file to read when none is given (or ``f(ctx)`` returning it).
    default_value : str, dict or callable, optional
        Value to use when none is given (a JSON string, a dict, or ``f(ctx)``).
        Give ``default`` or ``default_value``, not both.
    help : str, optional
        Shown by ``--help``.
    required : bool, optional
        Refuse to start without a value (ignored when a default is given).
    parser : callable or str, optional
        Turns the text into a mapping: a function, or its dotted name
        (``"my_pkg.parsers.parse"``; a leading ``.`` means inside ``headwater``).
        Without one the text is parsed as JSON.
    plain : bool, default False
        Give the parsed value as is instead of a ``ConfigValue`` (any type allowed).

    Examples
    --------
    >>> class TrainFlow(FlowSpec):  # doctest: +SKIP
    ...     cfg = Config("cfg", default="config.json")
    ...     @resources(cpu=cfg.cpu)
    ...     @step
    ...     def start(self):
    ...         print(self.cfg.model.layers)
    ...         self.next(self.end)
    """

    IS_CONFIG = True
    is_step = False  # probed on class attributes; never a deferred path

    def __init__(
        self,
        name: str,
        default: str | Callable[[ParameterContext], str] | None = None,
        default_value: str | dict[str, Any] | Callable[[ParameterContext], Any] | None = None,
        help: str | None = None,
        required: bool | None = None,
        parser: str | Callable[[str], Any] | None = None,
        plain: bool = False,
        **kwargs: Any,
    ) -> None:
        if default is not None and default_value is not None:
            raise ConfigError(f"Config {name!r} has both default= and default_value=.",
                              hint="Give a default file (default=) or a default value (default_value=), not both.")
        super().__init__(name, default=None, type=str, help=help, required=required, **kwargs)
        self.default_path = default
        self.default_value = default_value
        self.parser = parser
        self.plain = bool(plain)

    # -- class body: cfg.x / cfg["x"] are deferred -------------------------------------
    def __getattr__(self, name: str) -> ConfigPath:
        if name.startswith("_"):
            raise AttributeError(name)
        return ConfigPath(self, (("attr", name),))

    def __getitem__(self, key: Any) -> ConfigPath:
        return ConfigPath(self, (("item", key),))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(f"Config {self.name!r} has no value until the configs are read; it cannot be iterated.")

    # -- inside steps: read-only value ------------------------------------------------
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        values = d.get("_hw_params")
        if values is not None and self.attr_name in values:
            return values[self.attr_name]
        refs, loader = d.get("_hw_refs"), d.get("_hw_loader")
        if refs and loader is not None and self.attr_name in refs:
            value = self.wrap(loader(refs[self.attr_name]))
        else:
            applied = getattr(type(obj), _APPLIED, None) or {}
            if self.name not in applied:
                raise AttributeError(self.attr_name)
            value = applied[self.name]
        if values is None:
            values = d["_hw_params"] = {}
        values[self.attr_name] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(
            f"Config {self.name!r} is read-only: self.{self.attr_name} cannot be assigned in a step."
        )

    def wrap(self, raw: Any) -> Any:
        """The value steps see for the stored ``raw`` value."""
        return raw if raw is None or self.plain else ConfigValue(raw)

    def __repr__(self) -> str:
        return f"Config({self.name!r})"


def flow_configs(flow_cls: type) -> list[Config]:
    """The flow's Configs, in a stable order."""
    seen: dict[str, Config] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Config):
                seen[attr] = value
    return list(seen.values())


# ---------------------------------------------------------------------------------------
# Reading configs from the command line, the environment and defaults
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Applying configs to the flow class
# ---------------------------------------------------------------------------------------

def applied_configs(flow_cls: type) -> dict[str, Any] | None:
    """The config values (name -> value steps see) applied to ``flow_cls``, if any were."""
    return flow_cls.__dict__.get(_APPLIED)


def config_artifacts(flow_cls: type) -> dict[str, Any]:
    """What a run stores for the configs applied to ``flow_cls``: attribute name -> raw value."""
    raw = flow_cls.__dict__.get(_APPLIED_RAW) or {}
    return {c.attr_name: raw.get(c.name) for c in flow_configs(flow_cls)}


def apply_configs(flow_cls: type, raw: Mapping[str, Any]) -> None:
    """Fix the flow class to these raw config values (name -> value): deferred
    expressions in decorators and parameter defaults take their values."""
    from .flow_decorators import flow_decorators

    configs = flow_configs(flow_cls)
    values = {c.name: c.wrap(raw.get(c.name)) for c in configs}
    scope = dict(values)
    scope.update({c.attr_name: values[c.name] for c in configs})
    type.__setattr__(flow_cls, _APPLIED, values)
    type.__setattr__(flow_cls, _APPLIED_RAW, dict(raw))
    type.__setattr__(flow_cls, "_hw_graph_cache", None)  # switch keys may read configs
    decos: list[Any] = list(flow_decorators(flow_cls))
    seen: set[str] = set()
    for klass in flow_cls.__mro__:
        for attr, func in vars(klass).items():
            if attr not in seen and callable(func) and getattr(func, "is_step", False) is True:
                seen.add(attr)
                decos.extend(getattr(func, "decorators", ()))
    for d in decos:
        original = d.__dict__.setdefault("_hw_given_as_written", dict(d._given))
        if is_deferred(original):
            d._given = resolve_deferred(original, scope)
            d.attributes = dict(d.defaults)
            d._valid = False
    for p in _plain_parameters(flow_cls):
        original = p.__dict__.setdefault("_hw_default_as_written", p.default)
        if is_deferred(original):
            p.default = resolve_deferred(original, scope)
            if p.given_type is None:
                p.type = builtin_type(p.default) if p.default is not None else str


def _plain_parameters(flow_cls: type) -> list[Parameter]:
    from .parameters import flow_parameters

    return flow_parameters(flow_cls)


def read_switch_key(flow_cls: type, dotted: Sequence[str]) -> tuple[bool, Any]:
    """``self.<config>.<key>...`` as a switch key: (found, value) from the applied configs."""
    configs = {c.attr_name: c for c in flow_configs(flow_cls)}
    applied = applied_configs(flow_cls)
    if not dotted or dotted[0] not in configs or applied is None:
        return False, None
    value = applied[configs[dotted[0]].name]
    for key in dotted[1:]:
        try:
            value = value[key]
        except (KeyError, TypeError, IndexError):
            return False, None
    return True, value
