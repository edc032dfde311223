"""A real flow with @conda_base / @conda steps, run offline through the CLI against the conda channel
the tests build (tests/environments/condachannel.py): the conda path end to end."""

from __future__ import annotations

import json

from flowrun import run_flow


def test_conda_steps_see_their_own_versions(conda_channel, tmp_path, use_root) -> None:
    env = {"HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_CONDA_CHANNELS": conda_channel.as_uri()}
    root = tmp_path / ".headwater"
    r = run_flow("conda_flow.py", "--environment=conda", "run", root=root, env=env)
    assert r.returncode == 0, r.output
    from headwater import Flow

    use_root(root)
    run = Flow("CondaFlow").latest_run
    assert run["start"].task["tinylib"].data == "1.0"  # @conda_base
    assert run["two"].task["tinylib"].data == "2.0"  # @conda overrides the base's version
    assert run["end"].task["tinylib"].data is None  # @conda(disabled=True): the launching environment
    assert run["start"].task["sees_pytest"].data is False and run["end"].task["sees_pytest"].data is True
    two = json.loads(run["two"].task.metadata_dict["environment"])
    assert two["kind"] == "conda" and two["packages"]["tinylib"] == "2.0"
