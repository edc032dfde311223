"""@exit_hook: success and error hooks (one failing), given the finished run."""
import os

from headwater import FlowSpec, exit_hook, step


def on_ok(run=None):
    print(f"HOOK on_ok {run.pathspec} successful={run.successful}")


def on_bad(run):
    print(f"HOOK on_bad {run.pathspec} successful={run.successful}")


def broken():
    raise ValueError("hook exploded")


def no_args():
    print("HOOK no_args")


@exit_hook(on_success=[broken, on_ok, "no_args"], on_error=[on_bad])
class ExitHookFlow(FlowSpec):
    @step
    def start(self):
        if os.environ.get("HW_FAIL"):
            raise RuntimeError("step failed on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ExitHookFlow()
