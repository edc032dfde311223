"""@project: branch names, system tags and current's project fields (compat fixture)."""

from metaflow import FlowSpec, current, project, step


@project(name="compat_demo")
class ProjectFlow(FlowSpec):
    """Record what current says about the project."""

    @step
    def start(self):
        self.info = {
            "project_name": current.project_name, "branch_name": current.branch_name,
            "is_user_branch": current.is_user_branch, "is_production": current.is_production,
            "project_flow_name": current.project_flow_name,
        }
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectFlow()
