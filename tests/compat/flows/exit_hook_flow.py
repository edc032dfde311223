"""@exit_hook: hooks per outcome, told the finished run (one raises); COMPAT_FAIL makes the run fail
(compat fixture)."""

import os

from metaflow import FlowSpec, exit_hook, step


def after_success(run=None):
    print(f"HOOK after_success {run.pathspec.split('/')[0]} successful={run.successful} finished={run.finished}")


def after_error(run=None):
    print(f"HOOK after_error {run.pathspec.split('/')[0]} successful={run.successful}")


def broken(run=None):
    raise ValueError("hook exploded")


def no_args():
    print("HOOK no_args")


@exit_hook(on_success=[broken, after_success, "no_args"], on_error=[after_error])
class ExitHookFlow(FlowSpec):
    """start fails when COMPAT_FAIL is set."""

    @step
    def start(self):
        if os.environ.get("COMPAT_FAIL"):
            raise RuntimeError("failing on purpose")
        self.next(self.end)

    @step
    def end(self):
        print("end ran")


if __name__ == "__main__":
    ExitHookFlow()
