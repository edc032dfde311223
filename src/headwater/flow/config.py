"""``Config``, ``ConfigValue`` and ``config_expr``: flow configuration fixed before
anything runs (authoring layer).

A config is read once when the command line starts (``config_sources``), then
*applied* to the flow class here: expressions such as ``@resources(cpu=cfg.cpu)``
or ``Parameter("x", default=cfg.x)`` written in the class body are replaced by
their values. Inside steps ``self.cfg`` is a read-only ``ConfigValue``; the raw
values are stored with the run (artifacts of ``_parameters``) so tasks in other
processes and ``resume`` apply exactly the same values again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable

from ..exceptions import HeadwaterException
from .parameters import Parameter, ParameterContext, builtin_type

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

    # -- inside steps: read-only value (Parameter.__get__ caches it per task) ----------
    def task_value(self, stored: Any) -> Any:
        return self.wrap(stored)

    def unstored_value(self, obj: Any) -> Any:
        applied = getattr(type(obj), _APPLIED, None) or {}
        if self.name not in applied:
            raise AttributeError(self.attr_name)
        return applied[self.name]

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
