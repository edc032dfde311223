"""@project: branch names from --branch/--production, system tags, current's fields, bad names."""

from __future__ import annotations

import pytest

from flowrun import USER, run_flow
from headwater.flow.project import ProjectError, branch_name


@pytest.mark.parametrize("args, branch, user_branch, production", [
    ([], f"user.{USER}", True, False),
    (["--branch", "feat_1"], "test.feat_1", False, False),
    (["--production"], "prod", False, True),
    (["--production", "--branch", "feat_1"], "prod.feat_1", False, True),
])
def test_branch_naming_tags_and_current(tmp_path, use_root, args, branch, user_branch, production):
    from headwater import Flow

    root = tmp_path / ".headwater"
    r = run_flow("project_flow.py", *args, "run", root=root)
    assert r.returncode == 0, r.output
    assert f"Project: demo_proj, Branch: {branch}" in r.stderr
    use_root(root)
    run = Flow("ProjectFlow").latest_run
    assert {"project:demo_proj", f"project_branch:{branch}"} <= set(run.system_tags)
    assert run["start"].task.data.fields == {
        "project_name": "demo_proj", "branch_name": branch, "project_flow_name": f"demo_proj.{branch}.ProjectFlow",
        "is_user_branch": user_branch, "is_production": production,
    }


def test_a_task_in_another_process_sees_the_branch(tmp_path, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    r = run_flow("project_flow.py", "--production", "--branch", "hotfix", "run", root=root, launcher="subprocess")
    assert r.returncode == 0, r.output
    use_root(root)
    fields = Flow("ProjectFlow").latest_run["start"].task.data.fields
    assert (fields["branch_name"], fields["is_production"]) == ("prod.hotfix", True)


def test_bad_branch_is_a_clear_error(tmp_path):
    r = run_flow("project_flow.py", "--branch", "Feature-X", "run", root=tmp_path / ".headwater")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "The branch name 'Feature-X' may contain only lowercase letters, digits and underscores." in r.stderr


def test_branch_name_rules():
    assert branch_name("p", production=False, branch=None, user="ann") == "user.ann"
    with pytest.raises(ProjectError, match="@project needs a name"):
        branch_name("", production=False, branch=None, user="ann")
    with pytest.raises(ProjectError, match=r"The @project name 'My-Proj' may contain only"):
        branch_name("My-Proj", production=False, branch=None, user="ann")
    with pytest.raises(ProjectError, match="longer than 128 characters"):
        branch_name("p", production=True, branch="b" * 129, user="ann")


def test_branch_in_decorator_and_on_command_line_conflict(tmp_path):
    flow = tmp_path / "conflict_project_flow.py"
    flow.write_text((
        "from headwater import FlowSpec, project, step\n\n\n"
        "@project(name='p', branch='one')\n"
        "class ConflictProjectFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    ConflictProjectFlow()\n"))
    r = run_flow(flow, "--branch", "two", "run", root=tmp_path / ".headwater")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--branch was given on the command line and in @project(branch=...)" in r.stderr
