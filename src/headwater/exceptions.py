"""Errors a user can cause, all under one root: ``HeadwaterException``.

The CLI entry point is the only place that catches the root; it prints the
headline, location, message and hint without a traceback. Anything that is not
a ``HeadwaterException`` is an internal error and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Location:
    """Where in the user's source a problem is (shown as ``file:line``)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class HeadwaterException(Exception):
    """Root of every error a user can cause.

    Parameters
    ----------
    msg : str
        What went wrong, in the user's own names.
    location : Location, optional
        File and line of the user's code the error refers to.
    hint : str, optional
        How to fix it.
    """

    headline = "Headwater error"
    exit_code = 1

    def __init__(self, msg: str = "", *, location: Location | None = None, hint: str | None = None):
        super().__init__(msg)
        self.message = msg
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        return self.details()

    def details(self) -> str:
        """The message, then ``Hint: ...`` when there is a hint."""
        parts = [self.message]
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return "\n".join(parts)

    def render(self) -> str:
        """The text the CLI prints for this error."""
        head = self.headline
        if self.location is not None:
            head += f" ({self.location})"
        return f"{head}:\n    " + self.details().replace("\n", "\n    ")


class GraphError(HeadwaterException):
    """The flow's graph is invalid (a lint rule failed)."""

    headline = "Invalid flow graph"


class LintErrors(GraphError):
    """Several graph problems, reported together, sorted by line."""

    def __init__(self, errors: list[GraphError]):
        self.errors = sorted(errors, key=lambda e: (e.location.line if e.location else 0))
        super().__init__("\n".join(e.render() for e in self.errors))

    def render(self) -> str:
        n = len(self.errors)
        head = f"The flow's graph has {n} problem{'s' if n != 1 else ''}:"
        return head + "\n" + "\n".join(e.render() for e in self.errors)


class InvalidNextError(HeadwaterException):
    """A step called ``self.next`` in a way its graph does not allow."""

    headline = "Invalid self.next() transition"


class ParameterError(HeadwaterException):
    """A parameter was declared or given wrongly."""

    headline = "Invalid parameter"
    exit_code = 2


class CommandException(HeadwaterException):
    """A CLI command was used wrongly."""

    headline = "Invalid command"
    exit_code = 2


class InvalidCommandUse(HeadwaterException):
    """A command was given a combination Metaflow rejects after parsing (``tag add`` without
    ``--run-id``, ``tag list --flat --group-by-tag``): exit 1, as Metaflow's CommandException."""

    headline = "Invalid command"


class CommandNotSupported(HeadwaterException):
    """A Metaflow command headwater accepts but cannot carry out yet (``logs scrub``)."""

    headline = "Not supported yet"


class ReadOnlyAttributeError(HeadwaterException, AttributeError):
    """A step assigned to a class-level constant or a Parameter of its flow.

    Also an ``AttributeError``, as Metaflow raises, so ``except AttributeError``
    in user code keeps working, and ``str()`` of it is Metaflow's exact text
    (code that compares it keeps working too). Which step, attribute and line,
    and the fix, are in ``message``, ``location`` and ``hint``, and in what a
    failed task prints (``render()``).
    """

    headline = "Flow level attributes and Parameters are not modifiable"

    def __str__(self) -> str:
        return self.headline


class ArtifactError(HeadwaterException):
    """An artifact could not be stored (e.g. it cannot be pickled)."""

    headline = "Artifact error"


class MergeArtifactsError(HeadwaterException):
    """``merge_artifacts`` found conflicting or missing values."""

    headline = "Cannot merge artifacts"


class UnhandledInMergeArtifactsException(MergeArtifactsError):
    """Branches disagree on an artifact's value and the join did not resolve it."""


class MissingInMergeArtifactsException(MergeArtifactsError):
    """An artifact named in ``include`` exists in no branch."""


class DataCorruptionError(HeadwaterException):
    """A blob in the store does not match its content key."""

    headline = "Corrupt data in the store"


class DataMissingError(HeadwaterException):
    """A blob the record names is not in the store."""

    headline = "Missing data in the store"


class HeadwaterNotFound(HeadwaterException):
    """A flow, run, step, task or artifact does not exist."""

    headline = "Object not found"


class HeadwaterNamespaceMismatch(HeadwaterException):
    """The object exists but is outside the current namespace."""

    headline = "Object not in the current namespace"


class HeadwaterInvalidPathspec(HeadwaterException):
    """A pathspec string has the wrong shape."""

    headline = "Invalid pathspec"


class HeadwaterTaggingError(HeadwaterException):
    """A tag is invalid, or a tag change is not allowed (system tags are immutable)."""

    headline = "Tagging error"


class TaskFailed(HeadwaterException):
    """A task of the run failed; the run stops."""

    headline = "Step failure"


class UnknownUserError(HeadwaterException):
    """No user name could be found for the run."""

    headline = "Unknown user"


class HeadwaterInternalError(HeadwaterException):
    """headwater reached a state it should not (a bug to report, not a user mistake)."""

    headline = "Internal error"


class ExternalCommandFailed(HeadwaterException):
    """A command headwater ran on the user's behalf (a package installer, a tool) failed."""

    headline = "External command failed"


class ParameterFieldFailed(ParameterError):
    """Evaluating a field of a Parameter (e.g. a callable default) raised."""

    headline = "Parameter field failed"


class ParameterFieldTypeMismatch(ParameterError):
    """A field of a Parameter has a value of the wrong type."""

    headline = "Parameter field with a mismatching type"


# Metaflow-compatible aliases (users switching by changing imports catch these names;
# ``headwater.exception`` is this module under Metaflow's module name).
MetaflowException = HeadwaterException
MetaflowNotFound = HeadwaterNotFound
MetaflowNamespaceMismatch = HeadwaterNamespaceMismatch
MetaflowInvalidPathspec = HeadwaterInvalidPathspec
MetaflowTaggingError = HeadwaterTaggingError
MetaflowInternalError = HeadwaterInternalError
MetaflowDataMissing = DataMissingError
MetaflowUnknownUser = UnknownUserError


def qualified_type(cls: type) -> str:
    """``module.Name`` of an exception class, as Metaflow records it (``builtins.KeyError``)."""
    return f"{cls.__module__}.{cls.__name__}"


class HeadwaterExceptionWrapper(Exception):
    """An exception kept as text: what ``@catch(var=...)`` stores and ``Task.exception`` returns.

    The exception object itself is not kept: its class may not be importable
    where the wrapper is read, and an exception whose ``__init__`` takes other
    arguments than its message cannot be unpickled at all. As Metaflow's
    ``MetaflowExceptionWrapper`` (an alias of this class), ``str()`` is the
    traceback.

    Parameters
    ----------
    exc : BaseException, optional
        The exception to keep.
    type, message, stacktrace : str, optional
        The recorded text, when there is no exception object (read back from a record).

    Attributes
    ----------
    type : str
        The exception's class as ``module.Name``, builtins included (``builtins.KeyError``).
    message : str
        ``str(exception)``.
    exception : str
        The same as ``message`` (Metaflow's name for it).
    stacktrace : str
        The formatted traceback (empty when there was none).

    Examples
    --------
    >>> w = HeadwaterExceptionWrapper(KeyError("k"))
    >>> w.type, w.message
    ('builtins.KeyError', "'k'")
    """

    def __init__(self, exc: BaseException | None = None, *, type: str = "", message: str = "",
                 stacktrace: str = "") -> None:
        super().__init__()
        if exc is not None:
            import traceback

            type = qualified_type(exc.__class__)
            message = str(exc)
            stacktrace = stacktrace or "".join(traceback.format_exception(exc))
        self.type = type
        self.message = message
        self.stacktrace = stacktrace

    @property
    def exception(self) -> str:
        """The exception's message (Metaflow keeps ``str(exception)`` under this name)."""
        return self.message

    def __str__(self) -> str:
        if self.stacktrace:
            return self.stacktrace
        return f"[no stacktrace]\n{self.type}: {self.message}"

    def __repr__(self) -> str:
        return f"HeadwaterExceptionWrapper({self.type}: {self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from text alone: no user class is needed to load it.
        return (HeadwaterExceptionWrapper, (), {"type": self.type, "message": self.message,
                                                "stacktrace": self.stacktrace})


MetaflowExceptionWrapper = HeadwaterExceptionWrapper


class TimeoutException(HeadwaterException):
    """A task ran past its ``@timeout``."""

    headline = "Task timed out"


class TaskCrashed(HeadwaterException):
    """A task process died without reporting (killed, segfault, out of memory)."""

    headline = "Task process crashed"


class ResourcesError(HeadwaterException):
    """A step's ``@resources`` (or a whole ``@parallel`` gang's) cannot fit on this machine."""

    headline = "Not enough resources"


class FailureHandledByCatch(HeadwaterException):
    """What ``@catch`` stores when the task's process died rather than raising (Metaflow's name).

    Parameters
    ----------
    attempts : int
        How many attempts failed before the fallback attempt that records this.
    """

    headline = "Task execution failed but @catch handled it"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"Task execution kept failing over {attempts} attempts. Your code did not raise an exception. "
            "Something in the execution environment caused the failure.")


class RunnerError(HeadwaterException):
    """The Runner (``Runner``/``NBRunner``) was used wrongly: a missing flow file,
    an unknown option, or a flow class whose source cannot be found."""

    headline = "Runner error"


class RunnerValueError(ParameterError, RunnerError, ValueError):
    """A Runner argument is unknown, missing, or has a value headwater does not
    accept (``ValueError``, as Metaflow raises for these)."""

    headline = "Invalid Runner argument"


class RunnerTypeError(ParameterError, RunnerError, TypeError):
    """A Runner argument has a value of the wrong type (``TypeError``, as Metaflow
    raises for these)."""

    headline = "Invalid Runner argument"


class FlowFileNotFound(RunnerError, FileNotFoundError):
    """The flow file given to ``Runner`` does not exist (``FileNotFoundError``, as in Metaflow)."""

    headline = "Flow file not found"


class UnsupportedOptionError(CommandException):
    """A top-level option has a value Metaflow knows but headwater does not support
    yet (``--datastore=s3``), or a value neither knows."""

    headline = "Option value not supported"


class HeadwaterS3Exception(HeadwaterException):
    """An S3 operation failed (Metaflow: ``MetaflowS3Exception``). The message names the
    operation, the bucket and the key."""

    headline = "S3 error"


class HeadwaterS3NotFound(HeadwaterS3Exception):
    """The bucket or the key does not exist (Metaflow: ``MetaflowS3NotFound``)."""

    headline = "S3 object not found"


class HeadwaterS3AccessDenied(HeadwaterS3Exception):
    """The credentials were refused or do not allow the operation (Metaflow: ``MetaflowS3AccessDenied``)."""

    headline = "S3 access denied"


class HeadwaterS3URLException(HeadwaterS3Exception):
    """A malformed ``s3://`` URL, or a key used where a full URL is needed (Metaflow: ``MetaflowS3URLException``)."""

    headline = "Invalid S3 URL"


class HeadwaterS3InvalidRange(HeadwaterS3Exception):
    """A byte range outside the object (Metaflow: ``MetaflowS3InvalidRange``)."""

    headline = "Invalid S3 byte range"


class HeadwaterS3InsufficientDiskSpace(HeadwaterS3Exception):
    """A download did not fit in the local temporary directory (Metaflow: ``MetaflowS3InsufficientDiskSpace``)."""

    headline = "Not enough disk space for the S3 download"
