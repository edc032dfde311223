"""A flow whose start step sets an artifact nested --depth levels deep (built without recursion)."""
from headwater import FlowSpec, Parameter, step


class DeepFlow(FlowSpec):
    depth = Parameter("depth", default=100_000, help="How deep the artifact nests")

    @step
    def start(self):
        self.shallow = "kept"
        deep: list = []
        for _ in range(self.depth):
            deep = [deep]
        self.deep = deep
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeepFlow()
