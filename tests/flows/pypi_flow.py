"""Two steps in environments with conflicting versions of one library, one step in neither."""

import importlib.util
import shutil
import sys

from headwater import FlowSpec, pypi, step


def _versions(self):
    try:
        import tinylib

        self.tinylib = tinylib.__version__
    except ImportError:
        self.tinylib = None
    # pytest lives in the launching environment only: a step with an environment must not see it.
    self.sees_pytest = importlib.util.find_spec("pytest") is not None
    # hwleakmod is on the launching process's PYTHONPATH (the tests put it there): only the step
    # without an environment may see it.
    self.sees_pythonpath = importlib.util.find_spec("hwleakmod") is not None
    self.which_python = shutil.which("python")
    self.executable = sys.executable


class PypiFlow(FlowSpec):
    @pypi(packages={"tinylib": "1.*"})
    @step
    def start(self):
        _versions(self)
        print("tinylib", self.tinylib)
        self.next(self.two)

    @pypi(packages={"tinylib": "==2.*"})
    @step
    def two(self):
        _versions(self)
        self.next(self.end)

    @step
    def end(self):
        _versions(self)


if __name__ == "__main__":
    PypiFlow()
