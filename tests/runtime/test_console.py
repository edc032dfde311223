"""Foreach progress lines: throttled into a file or pipe, redrawn on a terminal."""

from __future__ import annotations

import io

import pytest

from headwater.runtime.console import PROGRESS_HEARTBEAT_S, PROGRESS_LOG_INTERVAL_S, Console, ForeachProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drive(console: Console, clock: Clock, total: int, seconds_per_task: float) -> ForeachProgress:
    """What the scheduler does for a foreach run one task at a time: start, finish, ..."""
    p = ForeachProgress("body", total)
    for _ in range(total):
        p.running += 1
        console.progress(p)
        clock.now += seconds_per_task
        p.running -= 1
        p.done += 1
        console.progress(p, final=p.done == total)
    return p


def _lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if "foreach:" in line]


@pytest.mark.parametrize("seconds_per_task", [0.0005, 0.05, 0.6, 5.0])
def test_a_log_file_gets_a_dozen_lines_for_2000_tasks(seconds_per_task: float) -> None:
    clock, out = Clock(), io.StringIO()
    _drive(Console("1", out=out, clock=clock), clock, 2000, seconds_per_task)
    lines = _lines(out)
    assert lines[-1].endswith("[1/body] foreach: 2000/2000 done, 0 running, 0 failed")
    duration = 2000 * seconds_per_task
    # a new 10% at most, or a heartbeat, never two lines within the interval; plus the last line
    most = min(11, duration / PROGRESS_LOG_INTERVAL_S + 1) + duration / PROGRESS_HEARTBEAT_S + 1
    assert 1 <= len(lines) <= most, lines


def test_slow_foreach_shows_every_ten_percent_and_heartbeats() -> None:
    clock, out = Clock(), io.StringIO()
    _drive(Console("1", out=out, clock=clock), clock, 20, 30.0)  # 10 minutes, 10% every minute
    done = [int(line.split("foreach: ")[1].split("/")[0]) for line in _lines(out)]
    assert done[0] == 0 and done[-1] == 20
    assert {2, 4, 6, 8, 10, 12, 14, 16, 18} <= set(done)
    clock, out = Clock(), io.StringIO()
    console = Console("1", out=out, clock=clock)
    p = ForeachProgress("body", 1000)
    console.progress(p)
    for _ in range(3):  # stuck below the next 10% for minutes: a line about every heartbeat
        clock.now += PROGRESS_HEARTBEAT_S
        p.done += 1
        console.progress(p)
    assert len(_lines(out)) == 4


def test_quiet_prints_no_progress_and_terminal_redraws_one_line() -> None:
    clock, out = Clock(), io.StringIO()
    _drive(Console("1", out=out, clock=clock, quiet=True), clock, 50, 1.0)
    assert out.getvalue() == ""
    clock, term = Clock(), Terminal()
    console = Console("1", out=term, clock=clock)
    assert console.tty
    _drive(console, clock, 50, 1.0)
    text = term.getvalue()
    assert text.count("\n") == 1 and text.endswith("foreach: 50/50 done, 0 running, 0 failed\n")
    # each task starts at the moment the previous one ends: within the redraw interval, not redrawn
    assert text.count("\r\033[K") == 51
