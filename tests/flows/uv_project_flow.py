"""Every step runs in the uv project next to this file (--environment=uv); the test copies it into a
project whose pyproject.toml asks for tinylib 2."""

from headwater import FlowSpec, step


def _version():
    try:
        import tinylib
    except ImportError:
        return None
    return tinylib.__version__


class UvProjectFlow(FlowSpec):
    @step
    def start(self):
        self.tinylib = _version()
        self.next(self.end)

    @step
    def end(self):
        self.tinylib = _version()


if __name__ == "__main__":
    UvProjectFlow()
