"""@secrets (inline), parallel_map / parallel_imap_unordered / profile, foreach_stack() items, a join's
input order and merge_artifacts(include=[a parameter]) (compat fixture)."""

import os

from metaflow import (FlowSpec, Parameter, parallel_imap_unordered, parallel_map, profile, secrets,
                      step)

SECRET = "s3cr3t-value-42"


def square(x):
    return x * x


class ToolboxFlow(FlowSpec):
    """Helpers users call inside steps."""

    label = Parameter("label", default="lbl")

    @secrets(sources=[{"type": "inline", "id": "compat", "options": {"env_vars": {"COMPAT_SECRET": SECRET}}}])
    @step
    def start(self):
        self.secret_seen = os.environ.get("COMPAT_SECRET") == SECRET
        self.squares = parallel_map(square, [1, 2, 3, 4])
        self.unordered = sorted(parallel_imap_unordered(square, [5, 6, 7]))
        stats = {}
        with profile("quiet", stats_dict=stats):
            pass
        self.profile_keys = sorted(stats)
        with profile("loud"):
            pass
        self.items = [{"k": 1}, (2, 3), "s", 1.5, 7, None]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.secret_in_env = "COMPAT_SECRET" in os.environ
        self.stack = [(index, count, value) for index, count, value in self.foreach_stack()]
        self.stack_types = [type(value).__name__ for _, _, value in self.foreach_stack()]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.input_order = [i.index for i in inputs]
        self.merge_artifacts(inputs, include=["label"])
        self.label_seen = self.label
        self.next(self.end)

    @step
    def end(self):
        self.secret_in_env = "COMPAT_SECRET" in os.environ


if __name__ == "__main__":
    ToolboxFlow()
