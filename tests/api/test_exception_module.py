"""``headwater.exception`` is Metaflow's ``metaflow.exception`` under headwater (imports switch by name)."""

from __future__ import annotations

import pytest

# Every name Metaflow 2.19's metaflow.exception offers users.
METAFLOW_NAMES = [
    "CommandException", "ExternalCommandFailed", "MetaflowDataMissing", "MetaflowException",
    "MetaflowExceptionWrapper", "MetaflowInternalError", "MetaflowInvalidPathspec", "MetaflowNamespaceMismatch",
    "MetaflowNotFound", "MetaflowTaggingError", "MetaflowUnknownUser", "MissingInMergeArtifactsException",
    "ParameterFieldFailed", "ParameterFieldTypeMismatch", "UnhandledInMergeArtifactsException",
]


@pytest.mark.parametrize("name", METAFLOW_NAMES)
def test_metaflow_names_import_from_headwater_exception(name):
    import headwater.exception as exception
    import headwater.exceptions as exceptions

    assert getattr(exception, name) is getattr(exceptions, name)


def test_the_alias_catches_headwater_errors():
    from headwater.exception import MetaflowException, MetaflowNotFound
    from headwater.exceptions import HeadwaterNotFound

    with pytest.raises(MetaflowNotFound, match="no such run"):
        raise HeadwaterNotFound("no such run")
    assert issubclass(MetaflowNotFound, MetaflowException)


def test_wrapper_is_metaflows():
    from headwater.exception import MetaflowExceptionWrapper

    try:
        {}["k"]
    except KeyError as e:
        caught = MetaflowExceptionWrapper(e)
    assert (caught.type, caught.message, caught.exception) == ("builtins.KeyError", "'k'", "'k'")
    assert str(caught) == caught.stacktrace and caught.stacktrace.startswith("Traceback")
    bare = MetaflowExceptionWrapper(type="builtins.ValueError", message="bad")
    assert str(bare) == "[no stacktrace]\nbuiltins.ValueError: bad"  # Metaflow's text without a traceback
