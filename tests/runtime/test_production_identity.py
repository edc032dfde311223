"""A run with HEADWATER_PRODUCTION_TOKEN set (as a production deployment's tasks have it) is in the
namespace production:<token>: its system tag and, in every task, current.namespace (Metaflow's identity)."""

from __future__ import annotations

from pathlib import Path

from flowrun import run_flow

FLOW = '''
from headwater import FlowSpec, current, step


class IdentityFlow(FlowSpec):
    @step
    def start(self):
        self.seen = current.namespace
        self.next(self.end)

    @step
    def end(self):
        self.seen_end = current.namespace


if __name__ == "__main__":
    IdentityFlow()
'''


def test_a_production_token_names_the_run_and_task_namespace(tmp_path: Path, use_root) -> None:
    flow = tmp_path / "identity_flow.py"
    flow.write_text(FLOW)
    root = tmp_path / ".headwater"
    r = run_flow(flow, "run", root=root, env={"HEADWATER_PRODUCTION_TOKEN": "tok-1"})
    assert r.returncode == 0, r.output
    from headwater import Flow, namespace

    use_root(root)
    namespace("production:tok-1")
    run = Flow("IdentityFlow").latest_run
    assert "production:tok-1" in run.system_tags and not any(t.startswith("user:") for t in run.system_tags)
    assert run["start"].task.data.seen == "production:tok-1" and run["end"].task.data.seen_end == "production:tok-1"
