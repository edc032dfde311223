"""GpuResourcesFlow: @resources(gpu=1) tasks get a GPU each, one at a time per GPU.

What it shows:
  * a step with ``@resources(gpu=1)`` runs only when a GPU is free, and its
    task sees exactly that GPU (``CUDA_VISIBLE_DEVICES``);
  * a ``@resources`` step without ``gpu`` sees no GPU at all;
  * the CUDA driver itself (``cuDeviceGetCount``) agrees, when one is present.

Run it on a machine with NVIDIA GPUs:
    python examples/gpu_resources.py run
"""

import os
import time

from headwater import FlowSpec, resources, step


def cuda_devices():
    """(count, names) as the CUDA driver sees them in this process, or None without a driver."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    if cuda.cuInit(0) != 0:
        return (0, [])
    n = ctypes.c_int()
    cuda.cuDeviceGetCount(ctypes.byref(n))
    names = []
    for i in range(n.value):
        dev = ctypes.c_int()
        cuda.cuDeviceGet(ctypes.byref(dev), i)
        buf = ctypes.create_string_buffer(100)
        cuda.cuDeviceGetName(buf, 100, dev)
        names.append(buf.value.decode())
    return (n.value, names)


class GpuResourcesFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(3))
        self.next(self.train, foreach="items")

    @resources(gpu=1)
    @step
    def train(self):
        self.visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.began = time.time()
        self.cuda = cuda_devices()
        time.sleep(0.5)
        self.ended = time.time()
        print(f"task {self.input}: CUDA_VISIBLE_DEVICES={self.visible!r}, driver sees {self.cuda}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.spans = sorted((i.began, i.ended, i.visible, i.cuda) for i in inputs)
        self.next(self.cpu_only)

    @resources(cpu=1)
    @step
    def cpu_only(self):
        self.cpu_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.cpu_cuda = cuda_devices()
        print(f"cpu_only: CUDA_VISIBLE_DEVICES={self.cpu_visible!r}, driver sees {self.cpu_cuda}")
        self.next(self.end)

    @step
    def end(self):
        overlaps = sum(1 for a, b in zip(self.spans, self.spans[1:]) if b[0] < a[1])
        print(f"{len(self.spans)} GPU tasks, {overlaps} overlapping on the one GPU")


if __name__ == "__main__":
    GpuResourcesFlow()
