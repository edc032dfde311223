"""A step that starts a helper process, then runs past its @timeout (its helper must not outlive it)."""
import os
import subprocess
import sys
import time
from pathlib import Path

from headwater import FlowSpec, step, timeout


class OwnerTimeoutFlow(FlowSpec):
    @timeout(seconds=1)
    @step
    def start(self):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        Path(os.environ["HW_HELPER_FILE"]).write_text(str(helper.pid))
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OwnerTimeoutFlow()
