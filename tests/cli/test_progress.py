"""The progress line of long commands (``cli.progress``): redrawn in place on a terminal,
occasional plain lines otherwise, nothing with ``--json``; and the commands use it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from headwater.cli.progress import PLAIN_EVERY, REDRAW_EVERY, ProgressLine, bar, is_terminal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar() -> None:
    assert bar(0, 4, width=8) == "[........]"
    assert bar(2, 4, width=8) == "[####....]"
    assert bar(9, 4, width=8) == "[########]" and bar(0, 0, width=4) == "[####]"


def test_on_a_terminal_one_line_is_redrawn_at_most_every_redraw_interval_and_erased() -> None:
    out, clock = Tty(), Clock()
    show = ProgressLine(out, clock=clock)
    assert show.terminal
    show.update("gc: deleting blobs", 1, 10)
    show.update("gc: deleting blobs", 2, 10)  # too soon: not drawn
    clock.now += REDRAW_EVERY
    show.update("gc: deleting blobs", 3, 10)
    show.update("gc: deleting blobs", 10, 10)  # the last step is always drawn
    show.close()
    assert out.getvalue() == (f"\rgc: deleting blobs {bar(1, 10)} 1/10\x1b[K"
        + f"\rgc: deleting blobs {bar(3, 10)} 3/10\x1b[K"
        + f"\rgc: deleting blobs {bar(10, 10)} 10/10\x1b[K" + "\r\x1b[K")


def test_a_count_without_a_known_total_is_shown_without_a_bar() -> None:
    out = Tty()
    show = ProgressLine(out, clock=Clock())
    show.update("gc: listing blobs", 3000, None)
    assert out.getvalue() == "\rgc: listing blobs 3000\x1b[K"


def test_elsewhere_plain_lines_only_every_plain_interval() -> None:
    out, clock = io.StringIO(), Clock()
    show = ProgressLine(out, clock=clock)
    assert not show.terminal
    for done in range(100):
        show.update("verify: blobs", done, 100)  # a quick command: nothing at all
    assert out.getvalue() == ""
    clock.now += PLAIN_EVERY
    show.update("verify: blobs", 50, 100)
    show.update("verify: blobs", 51, 100)
    clock.now += PLAIN_EVERY
    show.update("verify: 60/100 blobs")
    show.close()
    assert out.getvalue() == f"verify: blobs {bar(50, 100)} 50/100\nverify: 60/100 blobs\n"


def test_disabled_shows_nothing() -> None:
    out = Tty()
    show = ProgressLine(out, enabled=False)
    show.update("gc", 1, 1)
    show.close()
    assert out.getvalue() == ""


def test_a_dumb_terminal_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(Tty())
    monkeypatch.setenv("TERM", "xterm")
    assert is_terminal(Tty()) and not is_terminal(io.StringIO())


@pytest.mark.parametrize("command", [["gc", "--keep-last", "1"], ["delete"], ["verify"], ["reindex"]])
def test_long_commands_draw_progress_on_a_terminal(command: list[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from flowrun import USER, run_flow
    from gcstores import run_id_of
    from headwater.cli import progress
    from headwater.cli.main import cli

    root = tmp_path / ".headwater"
    ids = []
    for salt in (1, 2):
        r = run_flow("gc_flow.py", "run", "--salt", str(salt), root=root)
        assert r.returncode == 0, r.output
        ids.append(run_id_of(r.output))
    if command == ["delete"]:
        command = ["delete", f"GcFlow/{ids[0]}"]
    drawn: list[str] = []
    monkeypatch.setattr(progress, "is_terminal", lambda stream: True)
    monkeypatch.setattr(progress.ProgressLine, "update",
                        lambda self, text, done=None, total=None: drawn.append(text))
    r = CliRunner().invoke(cli, command, env={"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER,
                                              "HEADWATER_HOME": str(tmp_path / "home")})
    assert r.exit_code == 0, r.output
    name = command[0]
    assert drawn and all(t.startswith(f"{name}: ") for t in drawn), drawn
