"""An invalid graph: an unknown transition target and a step without self.next."""
from headwater import FlowSpec, step


class BadGraphFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middel)

    @step
    def middle(self):
        self.x = 1

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BadGraphFlow()
