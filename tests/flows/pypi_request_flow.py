"""One step whose @pypi request comes from the environment (PYPI_PACKAGES as JSON, PYPI_PYTHON):
each error test asks for something that cannot be had."""

import json
import os

from headwater import FlowSpec, pypi, step


class PypiRequestFlow(FlowSpec):
    @pypi(packages=json.loads(os.environ.get("PYPI_PACKAGES", "{}")), python=os.environ.get("PYPI_PYTHON") or None)
    @step
    def start(self):
        print("the step ran")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PypiRequestFlow()
