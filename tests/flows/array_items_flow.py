"""A foreach over large numpy arrays: each child must map its array from the list's blob."""
import numpy as np

from headwater import FlowSpec, Parameter, step

MIB = 1 << 20


def _array(i, mib):
    if i == 0:  # compressible: stored zstd, decoded in the child
        return np.zeros(mib * MIB // 8, dtype=np.int64)
    return np.random.default_rng(i).integers(0, 2**62, size=mib * MIB // 8, dtype=np.int64)


def _mapped_file(address):
    """The file whose mapping in this process holds ``address``, or None (anonymous memory)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                return fields[5] if len(fields) > 5 else None
    return None


class ArrayItemsFlow(FlowSpec):
    n = Parameter("n", default=4, type=int)
    mib = Parameter("mib", default=8, type=int)

    @step
    def start(self):
        self.arrays = [_array(i, self.mib) for i in range(self.n)]
        self.next(self.body, foreach="arrays")

    @step
    def body(self):
        a = self.input
        self.ok = bool(np.array_equal(a, _array(self.index, self.mib)))
        self.mapped = _mapped_file(a.ctypes.data)
        self.writeable = a.flags.writeable
        self.next(self.join)

    @step
    def join(self, inputs):
        self.ok = [inp.ok for inp in inputs]
        self.mapped = [inp.mapped for inp in inputs]
        self.writeable = [inp.writeable for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ArrayItemsFlow()
