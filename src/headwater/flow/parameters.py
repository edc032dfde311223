"""``Parameter``, ``JSONType`` and ``IncludeFile``: run inputs declared on a flow class.

A Parameter is a read-only data descriptor: inside a step ``self.alpha`` gives
the run's value and ``self.alpha = 1`` raises. The CLI turns each into a
``--name`` option of ``run``; values are stored as artifacts of the
``_parameters`` pseudo-task and inherited by every task.
"""

from __future__ import annotations

import json
import sys
import os
from dataclasses import dataclass
from typing import Any, Callable

from ..exceptions import HeadwaterException, ParameterError

RESERVED_PARAMETER_NAMES = frozenset(
    "params with tag namespace obj tags decospecs run-id-file max-num-splits max-workers "
    "max-log-size user-namespace run-id task-id runner-attribute-file datastore-root "
    "quiet help".split()
)


class JSONTooDeepError(ValueError):
    """A JSON text nests deeper than Python's recursion limit lets ``json.loads`` go."""

    def __init__(self) -> None:
        super().__init__(f"the JSON value is nested too deeply to load (past Python's recursion limit, "
                         f"{sys.getrecursionlimit()})")


class JSONTypeClass:
    """Marker type: the parameter's value is parsed as JSON."""

    name = "JSON"

    def convert(self, value: Any) -> Any:
        """``value`` parsed as JSON; ``ValueError`` (``JSONTooDeepError`` when too deep) if it is not."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except RecursionError:
            raise JSONTooDeepError() from None

    def __repr__(self) -> str:
        return "JSONType"


JSONType = JSONTypeClass()


@dataclass(frozen=True)
class ParameterContext:
    """Given to a callable ``default`` when the run starts."""

    flow_name: str
    user_name: str
    parameter_name: str
    logger: Callable[..., None] = print
    ds_type: str = "local"
    configs: Any = None


_TYPE_NAMES = {str: "string", int: "integer", float: "float", bool: "boolean"}


class Parameter:
    """A run parameter, given on the command line as ``--name VALUE``.

    Parameters
    ----------
    name : str
        The option name (``--name``); also the default attribute name.
    default : value or callable, optional
        Default value, or ``f(ctx: ParameterContext)`` evaluated at run start.
    type : type, optional
        ``str``, ``int``, ``float``, ``bool`` or ``JSONType``; inferred from the
        default when omitted (``str`` otherwise).
    help : str, optional
        Shown by ``run --help``.
    required : bool, optional
        The run refuses to start without a value.
    separator : str, optional
        For string parameters: split the value into a list on this separator.
    """

    IS_INCLUDE_FILE = False
    IS_CONFIG = False

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: Any = None,
        help: str | None = None,
        required: bool | None = None,
        show_default: bool | None = None,
        separator: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.default = default
        self.help = help
        self.required = bool(required)
        self.show_default = True if show_default is None else show_default
        self.separator = separator
        self.kwargs = kwargs
        self.attr_name: str = name.replace("-", "_")
        self.given_type = type  # None: inferred from the default (again once a config default is known)
        if type is None:
            if default is not None and not callable(default) and not getattr(default.__class__, "_hw_deferred", False):
                type = builtin_type(default)
            else:
                type = str
        self.type = type
        if self.type not in (str, int, float, bool) and not isinstance(self.type, JSONTypeClass):
            raise ParameterError(
                f"Parameter {name!r} has unsupported type {self.type!r}.",
                hint="Use str, int, float, bool or JSONType.",
            )
        if separator is not None and self.type is not str:
            raise ParameterError(
                f"Parameter {name!r} has a separator but is not a string parameter.",
                hint="Only str parameters can be split with separator=.",
            )

    # -- descriptor protocol: read-only inside steps ---------------------------------
    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr_name = attr

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        values = d.get("_hw_params")
        if values is not None and self.attr_name in values:
            return values[self.attr_name]
        refs, loader = d.get("_hw_refs"), d.get("_hw_loader")
        if refs and loader is not None and self.attr_name in refs:
            value = self.task_value(loader(refs[self.attr_name]))
        else:
            value = self.unstored_value(obj)
        # Loaded once per task and kept apart from the artifacts the step sets,
        # so reading a parameter never makes it a new artifact.
        if values is None:
            values = d["_hw_params"] = {}
        values[self.attr_name] = value
        return value

    def task_value(self, stored: Any) -> Any:
        """What a step sees for the value stored with the run (override)."""
        return stored

    def unstored_value(self, obj: Any) -> Any:
        """The value when the run stored none (override); a parameter always has one stored."""
        raise AttributeError(self.attr_name)

    def __set__(self, obj: Any, value: Any) -> None:
        import sys

        from .spec import _read_only

        raise _read_only(obj, self.attr_name, f"the Parameter {self.name!r}", sys._getframe(1))

    # -- values ------------------------------------------------------------------------
    @property
    def type_name(self) -> str:
        if isinstance(self.type, JSONTypeClass):
            return "JSON"
        return _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    def resolve_default(self, ctx: ParameterContext) -> Any:
        d = self.default
        if callable(d) and not isinstance(d, type):
            d = d(ctx)
        if isinstance(d, str) and (isinstance(self.type, JSONTypeClass) or self.type is not str):
            d = self.convert(d)
        return d

    def convert(self, value: Any) -> Any:
        """Turn a command-line string into the parameter's value (ParameterError if it can't)."""
        if value is None:
            return None
        try:
            if isinstance(self.type, JSONTypeClass):
                return JSONType.convert(value)
            if self.type is bool:
                if isinstance(value, bool):
                    return value
                s = str(value).strip().lower()
                if s in ("1", "true", "t", "yes", "y", "on"):
                    return True
                if s in ("0", "false", "f", "no", "n", "off"):
                    return False
                raise ValueError(value)
            if self.type is str and self.separator is not None and isinstance(value, str):
                return [v for v in value.split(self.separator)]
            return self.type(value)
        except JSONTooDeepError as e:
            raise ParameterError(f"Invalid value for parameter '--{self.name}': {e}.",
                                 hint=f"Pass a flatter value with --{self.name}.") from None
        except (ValueError, TypeError) as e:
            raise ParameterError(
                f"Invalid value for parameter '--{self.name}': {value!r} is not a valid {self.type_name}.",
                hint=f"Pass a {self.type_name} with --{self.name}.",
            ) from e

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, type={self.type_name})"


def builtin_type(value: Any) -> Any:
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t
    return JSONType


class IncludeFile(Parameter):
    """A local file whose content is stored with the run when it starts.

    The command line takes a path (``--name PATH``); inside steps the
    attribute holds the file's content (``str`` when ``is_text``, else ``bytes``).
    """

    IS_INCLUDE_FILE = True

    def __init__(
        self,
        name: str,
        required: bool | None = None,
        is_text: bool | None = None,
        encoding: str | None = None,
        help: str | None = None,
        default: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, default=default, type=str, help=help, required=required, **kwargs)
        self.is_text = True if is_text is None else is_text
        self.encoding = encoding or "utf-8"

    @property
    def type_name(self) -> str:
        return "file path"

    def convert(self, value: Any) -> Any:
        return value

    def load(self, path: str | None) -> str | bytes | None:
        """Read the file at run start (ParameterError naming the file if it can't)."""
        if path is None:
            return None
        try:
            if path.startswith("s3://"):
                data = _read_s3(path)
            else:
                with open(os.path.expanduser(path), "rb") as f:
                    data = f.read()
        except HeadwaterException as e:
            raise ParameterError(f"IncludeFile '--{self.name}': cannot read {path!r}: {e.message}",
                                 hint=e.hint) from None
        except OSError as e:
            raise ParameterError(
                f"IncludeFile '--{self.name}': cannot read {path!r} ({e.strerror}).",
                hint="Pass the path of an existing, readable local file.",
            ) from None
        if self.is_text:
            try:
                return data.decode(self.encoding)
            except UnicodeDecodeError:
                raise ParameterError(
                    f"IncludeFile '--{self.name}': {path!r} is not valid {self.encoding} text.",
                    hint="Pass is_text=False to include it as bytes, or set encoding=.",
                ) from None
        return data


def _read_s3(url: str) -> bytes:
    """The bytes of the S3 object at ``url`` (an IncludeFile may name one, as in Metaflow)."""
    from ..store.s3.connect import read_url

    return read_url(url, keep_process_clean=True)  # the run process forks its zygote after this


def deployed_parameter_name(name: str) -> str:
    """A parameter's name where an orchestrator deploys the flow (a workflow argument, a trigger's
    mapping): Metaflow lower-cases them, so ``Alpha`` and ``alpha`` are one argument there."""
    return name.lower()


def flow_parameters(flow_cls: type) -> list[Parameter]:
    """The flow's Parameters (and IncludeFiles), in a stable order; Configs are not among them."""
    seen: dict[str, Parameter] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Parameter) and not value.IS_CONFIG:
                seen[attr] = value
    return list(seen.values())


def validate_parameters(flow_cls: type) -> None:
    """Reject reserved or case-insensitively duplicated parameter names."""
    names: dict[str, str] = {}
    for p in flow_parameters(flow_cls):
        if p.name.lower() in RESERVED_PARAMETER_NAMES or p.name.replace("_", "-").lower() in RESERVED_PARAMETER_NAMES:
            raise ParameterError(
                f"Parameter name {p.name!r} of flow {flow_cls.__name__} is reserved by headwater's CLI.",
                hint="Rename the parameter.",
            )
        low = p.name.lower()
        if low in names:
            raise ParameterError(
                f"Flow {flow_cls.__name__} declares parameter {p.name!r} twice (names are case-insensitive).",
                hint="Give each parameter a distinct name.",
            )
        names[low] = p.name


def missing_required(p: Parameter) -> ParameterError:
    """The error for a required parameter given no value (the CLI's and the Runner's)."""
    return ParameterError(
        f"Missing required parameter '--{p.name}'.",
        hint=f"Pass --{p.name} <{p.type_name}> to run.",
    )


def resolve_parameters(flow_cls: type, given: dict[str, Any], user: str) -> dict[str, Any]:
    """Final values by attribute name: command line > default (callables evaluated);
    IncludeFile paths are read. Raises ParameterError for missing required ones."""
    from .config import ConfigValue, applied_configs

    applied = applied_configs(flow_cls)
    configs = ConfigValue(applied) if applied else None  # ctx.configs, as Metaflow's
    out: dict[str, Any] = {}
    for p in flow_parameters(flow_cls):
        value = given.get(p.name)
        if value is None:
            value = p.resolve_default(ParameterContext(flow_cls.__name__, user, p.name, configs=configs))
            if value is not None and p.separator is not None and isinstance(value, str):
                value = p.convert(value)
        elif isinstance(value, str):
            value = p.convert(value)
        if value is None and p.required:
            raise missing_required(p)
        if p.IS_INCLUDE_FILE:
            value = p.load(value)  # type: ignore[attr-defined]
        out[p.attr_name] = value
    return out


def flow_constants(flow_cls: type) -> dict[str, Any]:
    """Class-level constants of the flow (they become artifacts, as in Metaflow)."""
    from .spec import FlowSpec

    base = set(dir(FlowSpec))
    out: dict[str, Any] = {}
    for klass in reversed(flow_cls.__mro__):
        if klass is object or klass is FlowSpec or not issubclass(klass, FlowSpec):
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_") or attr in base:
                continue
            if isinstance(value, (Parameter, property, staticmethod, classmethod)) or callable(value):
                continue
            out[attr] = value
    return out
