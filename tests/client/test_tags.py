"""Run tag mutation: append-only tag events in the store, the index kept in step,
Metaflow's semantics (system tags immutable, replace is one atomic change)."""

from __future__ import annotations

import pickle

import pytest

from headwater.client import Flow, Run, Task
from headwater.exceptions import HeadwaterException, HeadwaterTaggingError, MetaflowTaggingError
from headwater.meta.index import Index
from headwater.store import Datastore

from .conftest import make_run

SYSTEM = {"user:alice", "runtime:dev", "python_version:3.11.7", "headwater_version:0.1.0"}


def _events(root, run_id: str = "1000") -> list[dict]:
    return Datastore(root).records.read_tag_events("HelloFlow", run_id)


def test_add_remove_replace_show_at_once(hello, root) -> None:
    run = Run("HelloFlow/1000")
    assert run.user_tags == {"exp"}
    run.add_tag("a")
    assert run.user_tags == {"exp", "a"} and run.tags == {"exp", "a"} | SYSTEM
    run.add_tags(["b", "c"])
    run.remove_tag("exp")
    run.remove_tags(["c", "never-there"])
    assert run.user_tags == {"a", "b"}
    run.replace_tag("a", "z")
    run.replace_tags(["b"], ["y", "x"])
    assert run.user_tags == {"z", "y", "x"} and run.system_tags == SYSTEM
    # Another reader (fresh objects, the index) sees the same.
    assert Run("HelloFlow/1000").user_tags == {"z", "y", "x"}
    assert Task("HelloFlow/1000/start/1").user_tags == {"z", "y", "x"}
    assert [r.id for r in Flow("HelloFlow").runs("x", "z")] == ["1000"]
    assert list(Flow("HelloFlow").runs("exp")) == []


def test_each_change_is_one_event(hello, root) -> None:
    run = Run("HelloFlow/1000")
    run.replace_tags(["exp"], ["new1", "new2"])
    (event,) = _events(root)
    assert event["add"] == ["new1", "new2"] and event["remove"] == ["exp"]
    assert event["user"] == "alice" and isinstance(event["at"], float)


def test_a_change_that_changes_nothing_writes_nothing(hello, root) -> None:
    run = Run("HelloFlow/1000")
    run.add_tag("exp")
    run.remove_tag("not-a-tag")
    run.replace_tag("exp", "exp")
    assert _events(root) == [] and run.user_tags == {"exp"}


def test_system_tags_cannot_be_removed(hello) -> None:
    run = Run("HelloFlow/1000")
    with pytest.raises(HeadwaterTaggingError, match=r"Cannot remove the tag 'runtime:dev' .* it is a system tag"):
        run.remove_tag("runtime:dev")
    with pytest.raises(MetaflowTaggingError, match=r"'user:alice' .* system tag"):
        run.replace_tags(["user:alice"], ["x"])
    assert run.user_tags == {"exp"} and run.system_tags == SYSTEM  # nothing half-applied


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: r.add_tags("abc"), r"add_tags\(\) expects a list of tags, got the string 'abc'"),
        (lambda r: r.add_tag(""), r"Tag '' is empty"),
        (lambda r: r.add_tag("   "), r"Tag '   ' is empty"),
        (lambda r: r.add_tag(7), r"Tag 7 is not a string \(int\)"),
        (lambda r: r.add_tag("x" * 501), r"is 501 characters long; tags may have at most 500"),
        (lambda r: r.remove_tags(None), r"remove_tags\(\) expects a list of tags, got None"),
        (lambda r: r.add_tags([f"t{i}" for i in range(50)]), r"would have 51 user tags; a run may have at most 50"),
    ],
)
def test_invalid_tags(hello, root, call, match) -> None:
    run = Run("HelloFlow/1000")
    with pytest.raises(HeadwaterTaggingError, match=match) as exc:
        call(run)
    assert isinstance(exc.value, HeadwaterException) and MetaflowTaggingError is HeadwaterTaggingError
    assert _events(root) == [] and Run("HelloFlow/1000").user_tags == {"exp"}


def test_reindex_replays_tag_events(hello, root) -> None:
    run = Run("HelloFlow/1000")
    run.replace_tags(["exp"], ["kept"])
    run.add_tag("later")
    with Index(root) as idx:
        idx.set_tags("HelloFlow", "1000", ["stale"])  # the cache drifts ...
        assert idx.run("HelloFlow", "1000").tags == ("stale",)
        counts = idx.reindex(Datastore(root).records)  # ... the store puts it right
        assert counts["runs"] == 1
        assert idx.run("HelloFlow", "1000").tags == ("kept", "later")
        assert [r.run_id for r in idx.runs("HelloFlow", tags=["later", "user:alice"])] == ["1000"]
        assert idx.runs("HelloFlow", tags=["exp"]) == [] and idx.runs("HelloFlow", tags=["stale"]) == []


def test_run_known_only_to_the_records(root) -> None:
    Index(root).close()  # an index file that exists but never heard of the run
    make_run(root, index=False)
    with Index(root) as idx:
        assert idx.run("HelloFlow", "1000") is None
    run = Run("HelloFlow/1000")
    run.add_tag("t")
    assert run.user_tags == {"t"}
    assert Run("HelloFlow/1000").user_tags == {"t"}  # replayed from the records


def test_tags_survive_pickling(hello) -> None:
    run = Run("HelloFlow/1000")
    run.add_tag("p")
    again = pickle.loads(pickle.dumps(run))
    assert again.user_tags == {"exp", "p"}
    again.remove_tag("p")
    assert Run("HelloFlow/1000").user_tags == {"exp"}
