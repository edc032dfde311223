"""@project: branch naming, system tags and current's project fields."""
from headwater import FlowSpec, current, project, step


@project(name="demo_proj")
class ProjectFlow(FlowSpec):
    @step
    def start(self):
        self.fields = {k: getattr(current, k) for k in (
            "project_name", "branch_name", "project_flow_name", "is_user_branch", "is_production")}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectFlow()
