"""Namespaces: the default, switching, the global namespace, and what each hides."""

from __future__ import annotations

import pytest

from headwater.client import (
    DataArtifact,
    Flow,
    Headwater,
    Run,
    Step,
    Task,
    default_namespace,
    get_namespace,
    namespace,
)
from headwater.exceptions import HeadwaterException, HeadwaterNamespaceMismatch

from .conftest import make_run


@pytest.fixture
def mixed(root):
    """alice: 1000 (tag exp), 1001; bob: 1002 (tag exp). BobFlow: only bob."""
    make_run(root, run_id="1000", tags=("exp",), created_at=1000.0)
    make_run(root, run_id="1001", created_at=2000.0)
    make_run(root, run_id="1002", user="bob", tags=("exp",), created_at=3000.0)
    make_run(root, "BobFlow", "1", user="bob", created_at=4000.0)
    return root


def ids(runs) -> list[str]:
    return [r.id for r in runs]


def test_default_namespace_is_the_user(mixed, monkeypatch) -> None:
    assert get_namespace() == "user:alice"
    assert ids(Flow("HelloFlow")) == ["1001", "1000"]
    # Until namespace() is called, the default follows the user of the environment.
    monkeypatch.setenv("HEADWATER_USER", "bob")
    assert get_namespace() == "user:bob"
    assert ids(Flow("HelloFlow")) == ["1002"]


def test_switch_to_another_user_and_back(mixed, monkeypatch) -> None:
    assert namespace("user:bob") == "user:bob"
    assert get_namespace() == "user:bob"
    assert ids(Flow("HelloFlow")) == ["1002"]
    monkeypatch.setenv("HEADWATER_USER", "carol")  # an explicit namespace does not follow the user
    assert get_namespace() == "user:bob"
    monkeypatch.setenv("HEADWATER_USER", "alice")
    assert default_namespace() == "user:alice"
    assert get_namespace() == "user:alice"


def test_global_namespace_sees_everything(mixed) -> None:
    assert namespace(None) is None
    assert get_namespace() is None
    assert ids(Flow("HelloFlow")) == ["1002", "1001", "1000"]
    assert Run("HelloFlow/1002").is_in_namespace()
    assert [f.id for f in Headwater()] == ["BobFlow", "HelloFlow"]


def test_tag_namespace(mixed) -> None:
    namespace("exp")
    assert ids(Flow("HelloFlow")) == ["1002", "1000"]
    assert ids(Flow("HelloFlow").runs("user:bob")) == ["1002"]


def test_namespace_rejects_non_strings() -> None:
    with pytest.raises(HeadwaterException, match=r"namespace\(\) expects a tag"):
        namespace(42)  # type: ignore[arg-type]
    with pytest.raises(HeadwaterException, match=r"namespace\(\) expects a tag"):
        namespace("")


def test_no_user_variable_falls_back_to_login_name(mixed, monkeypatch) -> None:
    import getpass

    for k in ("HEADWATER_USER", "USER", "USERNAME", "LOGNAME"):
        monkeypatch.delenv(k, raising=False)
    assert default_namespace() == f"user:{getpass.getuser()}"


@pytest.mark.parametrize(
    ("cls", "pathspec", "kind"),
    [
        (Run, "HelloFlow/1002", "Run"),
        (Step, "HelloFlow/1002/start", "Step"),
        (Task, "HelloFlow/1002/start/1", "Task"),
        (DataArtifact, "HelloFlow/1002/start/1/items", "DataArtifact"),
    ],
)
def test_objects_outside_the_namespace_raise(mixed, cls, pathspec, kind) -> None:
    msg = rf"{kind} '{pathspec}' is not in the current namespace 'user:alice'"
    with pytest.raises(HeadwaterNamespaceMismatch, match=msg) as exc:
        cls(pathspec)
    assert "namespace(None)" in str(exc.value)
    assert "namespace('user:bob')" in str(exc.value)
    # Opting out of the check opens it anyway.
    obj = cls(pathspec, _namespace_check=False)
    assert obj.pathspec == pathspec and not obj.is_in_namespace()
    namespace(None)
    assert cls(pathspec).is_in_namespace()


def test_flow_without_runs_in_the_namespace(mixed) -> None:
    msg = r"Flow 'BobFlow' has no runs in the current namespace 'user:alice'"
    with pytest.raises(HeadwaterNamespaceMismatch, match=msg) as exc:
        Flow("BobFlow")
    assert "namespace(None)" in str(exc.value)
    assert [f.id for f in Headwater()] == ["HelloFlow"]
    assert "BobFlow" not in Headwater()
    assert not Flow("BobFlow", _namespace_check=False).is_in_namespace()


def test_children_outside_the_namespace(mixed) -> None:
    flow = Flow("HelloFlow")
    assert "1002" not in flow
    assert "1000" in flow
    with pytest.raises(HeadwaterNamespaceMismatch, match=r"Run 'HelloFlow/1002' is not in the current namespace"):
        flow["1002"]
    assert flow.latest_run == Run("HelloFlow/1001")


def test_objects_keep_the_namespace_they_were_opened_in(mixed) -> None:
    flow = Flow("HelloFlow")
    namespace(None)
    assert ids(flow) == ["1001", "1000"]
    assert ids(Flow("HelloFlow")) == ["1002", "1001", "1000"]


def test_steps_and_tasks_inherit_run_tags(mixed) -> None:
    run = Run("HelloFlow/1000")
    step = run["work"]
    task = step.task
    art = task["item"]
    for obj in (step, task, art):
        assert obj.tags == run.tags
        assert obj.user_tags == frozenset({"exp"})
        assert "user:alice" in obj.system_tags
        assert obj.is_in_namespace()
