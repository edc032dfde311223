"""@pypi and @conda, both with packages, on one step: a conflict found before anything runs."""

from headwater import FlowSpec, conda, pypi, step


class EnvConflictFlow(FlowSpec):
    @conda(packages={"tinylib": "1.0.0"})
    @pypi(packages={"tinylib": "1.*"})
    @step
    def start(self):
        print("the step ran")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EnvConflictFlow()
