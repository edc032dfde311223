"""A launcher: headwater's subprocess launcher that announces itself."""

from __future__ import annotations

import sys

from headwater.runtime.launchers.subprocess import SubprocessLauncher


class ExampleLauncher(SubprocessLauncher):
    def start(self) -> None:
        print("example launcher: starting", file=sys.stderr)
        super().start()
