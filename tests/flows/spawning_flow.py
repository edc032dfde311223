"""A step that starts a helper process and then hangs past its @timeout."""
import os
import subprocess
import time

from headwater import FlowSpec, catch, step, timeout


class SpawningFlow(FlowSpec):
    @catch(var="err")
    @timeout(seconds=1)
    @step
    def start(self):
        helper = subprocess.Popen(["sleep", "60"])
        with open(os.environ["HW_SIDE_EFFECTS"], "w") as f:
            f.write(str(helper.pid))
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SpawningFlow()
