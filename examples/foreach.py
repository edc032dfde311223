"""ForeachFlow: a dynamic fan-out over a list, and a join that gathers results.

What it shows:
  * ``self.next(self.square, foreach="numbers")`` starts one ``square`` task per
    element of the ``numbers`` artifact (their number is only known at run time);
  * inside a foreach task, ``self.input`` is this task's element and
    ``self.index`` its position in the list;
  * the join receives ``inputs`` in the order of the list (index order), whatever
    the order in which the tasks finished — so results line up with ``numbers``;
  * ``--max-workers`` bounds how many tasks run at once and ``--max-num-splits``
    guards against accidentally huge fan-outs (default 100).

Run it:
    python examples/foreach.py run
    python examples/foreach.py run --count 500 --max-num-splits 1000
"""

from headwater import FlowSpec, Parameter, step


class ForeachFlow(FlowSpec):
    """start -> square (x count) -> gather -> end."""

    count = Parameter("count", default=10, help="How many numbers to square.")

    @step
    def start(self):
        self.numbers = list(range(self.count))
        self.next(self.square, foreach="numbers")

    @step
    def square(self):
        assert self.input == self.numbers[self.index]
        self.value = self.input * self.input
        self.next(self.gather)

    @step
    def gather(self, inputs):
        # inputs come in foreach-index order: squares[i] belongs to numbers[i].
        self.squares = [inp.value for inp in inputs]
        self.total = sum(self.squares)
        self.numbers = inputs[0].numbers
        assert self.squares == [n * n for n in self.numbers], "join inputs out of order"
        self.next(self.end)

    @step
    def end(self):
        n = self.count
        assert self.total == (n - 1) * n * (2 * n - 1) // 6
        print(f"sum of squares of 0..{n - 1} = {self.total}")


if __name__ == "__main__":
    ForeachFlow()
