"""Two @conda steps with conflicting versions of one library, one step in neither (the local
test channel of tests/environments/condachannel.py provides tinylib 1.0 and 2.0)."""

import importlib.util

from headwater import FlowSpec, conda, conda_base, step


def _versions(self):
    try:
        import tinylib

        self.tinylib = tinylib.__version__
    except ImportError:
        self.tinylib = None
    self.sees_pytest = importlib.util.find_spec("pytest") is not None


@conda_base(packages={"tinylib": "1.*"})
class CondaFlow(FlowSpec):
    @step
    def start(self):
        _versions(self)
        self.next(self.two)

    @conda(packages={"tinylib": "2.*"})
    @step
    def two(self):
        _versions(self)
        self.next(self.end)

    @conda(disabled=True)
    @step
    def end(self):
        _versions(self)


if __name__ == "__main__":
    CondaFlow()
