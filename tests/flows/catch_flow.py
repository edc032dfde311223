"""@catch of a user exception whose __init__ takes two arguments, and of a killed process."""
import os
import signal

from headwater import FlowSpec, catch, step


class TwoArgError(Exception):
    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")
        self.code = code


class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.risky)

    @catch(var="err")
    @step
    def risky(self):
        self.partial = "set before the raise"
        raise TwoArgError(7, "bad input")
        self.next(self.killed)

    @catch(var="kill_err")
    @step
    def killed(self):
        os.kill(os.getpid(), signal.SIGKILL)
        self.next(self.end)

    @step
    def end(self):
        self.err_type = self.err.type


if __name__ == "__main__":
    CatchFlow()
