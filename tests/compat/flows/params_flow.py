"""Parameters of every type, a callable default, a separator, and an IncludeFile (compat fixture)."""

from metaflow import FlowSpec, IncludeFile, JSONType, Parameter, step


def default_seed(ctx):
    return len(ctx.flow_name)


class ParamsFlow(FlowSpec):
    """Echo every parameter into artifacts."""

    who = Parameter("who", default="world", help="Whom to greet")
    count = Parameter("count", default=2, help="How many times")
    ratio = Parameter("ratio", default=0.5, type=float, help="A float")
    loud = Parameter("loud", default=False, type=bool, help="Shout")
    config = Parameter("config", default='{"a": 1}', type=JSONType, help="JSON config")
    seed = Parameter("seed", default=default_seed, type=int, help="Callable default")
    fruits = Parameter("fruits", default="apple,pear", separator=",", help="A list")
    notes = IncludeFile("notes", is_text=True, help="A text file")

    @step
    def start(self):
        self.greeting = ("HELLO " if self.loud else "hello ") + self.who
        self.tried_write = None
        try:
            self.count = 5
        except AttributeError:
            self.tried_write = "AttributeError"
        self.next(self.end)

    @step
    def end(self):
        self.seen = {"who": self.who, "count": self.count, "ratio": self.ratio, "loud": self.loud,
                     "config": self.config, "seed": self.seed, "fruits": self.fruits, "notes": self.notes}


if __name__ == "__main__":
    ParamsFlow()
