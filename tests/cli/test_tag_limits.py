"""Issue 8, fault 10: one tag validation for every way a tag comes in, and tags
with control characters shown escaped (a newline never breaks a row)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from flowrun import USER, run_flow
from headwater.cli.main import cli
from headwater.client import Flow, namespace
from headwater.exceptions import HeadwaterTaggingError


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ([""], r"Tag '' is empty"),
        (["   "], r"Tag '   ' is empty"),
        (["x" * 600], r"is 600 characters long; tags may have at most 500"),
        ([f"t{i}" for i in range(60)], r"--tag gives 60 distinct tags; a run may have at most 50"),
    ],
)
def test_run_tag_obeys_the_tag_limits(tmp_path, tags, match) -> None:
    root = tmp_path / ".headwater"
    args = [a for t in tags for a in ("--tag", t)]
    r = run_flow("linear_flow.py", "run", *args, root=root)
    assert r.returncode == 1, r.output
    assert "Tagging error" in r.output and re.search(match, r.output), r.output
    assert "Traceback" not in r.output
    assert not (root / "runs" / "LinearFlow").exists() or not any((root / "runs" / "LinearFlow").iterdir())


def test_run_tag_at_the_limits_is_accepted(tmp_path, use_root) -> None:
    root = tmp_path / ".headwater"
    tags = ["y" * 500] + [f"t{i}" for i in range(49)] + ["t0"]  # 50 distinct, one repeated
    args = [a for t in tags for a in ("--tag", t)]
    r = run_flow("linear_flow.py", "run", *args, root=root)
    assert r.returncode == 0, r.output
    use_root(root)
    assert set(Flow("LinearFlow").latest_run.user_tags) == set(tags)


def test_tag_with_a_newline_is_shown_escaped(tmp_path, use_root) -> None:
    root = tmp_path / ".headwater"
    r = run_flow("linear_flow.py", "run", "--tag", "two\nlines", "--tag", "bell\x07", root=root)
    assert r.returncode == 0, r.output
    use_root(root)
    namespace(None)
    run = Flow("LinearFlow").latest_run
    assert {"two\nlines", "bell\x07"} <= set(run.tags)  # the data keeps the tag as given

    env = {"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER}
    out = CliRunner().invoke(cli, ["runs"], env=env)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 2, out.output  # header + one row: the newline did not split the row
    assert "two\\nlines" in lines[1] and "bell\\x07" in lines[1]

    shown = CliRunner().invoke(cli, ["show", f"LinearFlow/{run.id}"], env=env)
    assert "two\\nlines" in shown.output and "two\nlines" not in shown.output

    listed = run_flow("linear_flow.py", "tag", "list", "--run-id", run.id, root=root)
    assert listed.returncode == 0, listed.output
    assert "two\\nlines" in listed.output and "two\nlines" not in listed.output


def test_tag_add_and_client_share_the_limits(tmp_path, use_root) -> None:
    root = tmp_path / ".headwater"
    assert run_flow("linear_flow.py", "run", root=root).returncode == 0
    use_root(root)
    run = Flow("LinearFlow").latest_run
    r = run_flow("linear_flow.py", "tag", "add", "--run-id", run.id, "x" * 501, root=root)
    assert r.returncode == 1 and "tags may have at most 500" in r.output, r.output
    with pytest.raises(HeadwaterTaggingError, match=r"Tag '' is empty"):
        run.add_tag("")
    with pytest.raises(HeadwaterTaggingError, match=r"a run may have at most 50"):
        run.add_tags([f"t{i}" for i in range(51)])


def test_runner_tags_obey_the_tag_limits(tmp_path, monkeypatch) -> None:
    from flowrun import FLOWS
    from headwater import Runner

    root = tmp_path / ".headwater"
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(root))
    monkeypatch.setenv("HEADWATER_USER", USER)
    with Runner(str(FLOWS / "linear_flow.py"), cwd=str(tmp_path)).run(tags=["ok", "z" * 501]) as result:
        assert result.status == "failed" and result.run is None
        assert "is 501 characters long; tags may have at most 500" in result.stderr
    assert not (root / "runs" / "LinearFlow").exists() or not any((root / "runs" / "LinearFlow").iterdir())


def test_two_different_tags_never_print_the_same():
    from headwater.tags import shown_tag

    assert shown_tag("plain-tag") == "plain-tag"
    assert shown_tag("a\nb") == "a\\nb"
    assert shown_tag("a\\nb") == "a\\\\nb"  # a literal backslash-n is not a newline
