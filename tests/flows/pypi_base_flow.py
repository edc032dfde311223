"""@pypi_base for every step; one step overrides the version and one opts out."""

from headwater import FlowSpec, pypi, pypi_base, step


def _version():
    try:
        import tinylib
    except ImportError:
        return None
    return tinylib.__version__


@pypi_base(packages={"tinylib": "1.0.0"})
class PypiBaseFlow(FlowSpec):
    @step
    def start(self):
        self.tinylib = _version()
        self.next(self.newer)

    @pypi(packages={"tinylib": "2.0.0"})
    @step
    def newer(self):
        self.tinylib = _version()
        self.next(self.end)

    @pypi(disabled=True)
    @step
    def end(self):
        self.tinylib = _version()


if __name__ == "__main__":
    PypiBaseFlow()
