"""@timeout runs on one clock: the scheduler's absolute deadline, armed inside the task
(runtime.deadline), with the scheduler's kill only as a backstop."""

from __future__ import annotations

import signal
import time

import pytest

from flowrun import run_flow
from headwater.exceptions import TimeoutException
from headwater.runtime import deadline


def _latest(use_root, r, flow):
    from headwater import Flow

    use_root(r.root)
    return Flow(flow).latest_run


def test_slow_setup_does_not_turn_a_timeout_into_a_kill(tmp_path, launcher, use_root):
    # task_pre_step sleeps longer than GRACE: the task's timer must still fire first,
    # in the step, so the attempt keeps what the step set (a kill would lose it).
    assert 2.5 > deadline.GRACE
    r = run_flow("slow_setup_timeout_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher, timeout=90)
    assert r.returncode == 1 and "timed out after 0 hours, 0 minutes, 5 seconds" in r.output
    task = _latest(use_root, r, "SlowSetupTimeoutFlow")["start"].task
    assert task.exception.type == "headwater.exceptions.TimeoutException"
    assert task.data.progress == "set before the timeout"  # raised in the step: a killed task keeps nothing


def _user_handler(signum, frame):  # a handler of the user's own, to be restored
    pass


@pytest.fixture
def user_alarm_handler():
    before = signal.signal(signal.SIGALRM, _user_handler)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, before)


def test_the_timer_restores_the_previous_handler(user_alarm_handler):
    timer = deadline.StepTimer("start", 10, time.monotonic() + 10)
    timer.run(lambda: None)
    assert signal.getsignal(signal.SIGALRM) is _user_handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def _sleepy_step():
    time.sleep(5)


def test_the_timer_raises_in_the_step_at_the_deadline(user_alarm_handler):
    timer = deadline.StepTimer("start", 0.05, time.monotonic() + 0.05)
    with pytest.raises(TimeoutException, match=r"Step start timed out after 0 hours, 0 minutes, 0.05 seconds"):
        timer.run(_sleepy_step)
    assert signal.getsignal(signal.SIGALRM) is _user_handler


def test_a_deadline_already_past_fires_as_the_step_starts(user_alarm_handler):
    timer = deadline.StepTimer("start", 1, time.monotonic() - 1)
    with pytest.raises(TimeoutException, match="timed out after 0 hours, 0 minutes, 1 seconds"):
        timer.run(_sleepy_step)


def test_a_late_alarm_does_not_fail_a_finished_step(user_alarm_handler):
    # The alarm arrives after the step returned, while headwater's own code runs:
    # the step finished in time, so nothing may be raised.
    timer = deadline.StepTimer("start", 10, time.monotonic() + 10)

    def step_then_late_alarm():
        return None

    timer.run(step_then_late_alarm)
    timer._expired(signal.SIGALRM, None)  # delivered after the step was done: a no-op


def test_an_alarm_in_headwaters_frames_is_deferred_to_the_step(user_alarm_handler):
    timer = deadline.StepTimer("start", 10, time.monotonic() + 10)
    seen = []

    def step():
        import sys

        # As if the alarm had landed in the timer's own frame (before the step
        # started): it must not raise there, and must fire in the step instead.
        timer._expired(signal.SIGALRM, sys._getframe(1))
        seen.append("deferred")
        time.sleep(5)

    with pytest.raises(TimeoutException):
        timer.run(step)
    assert seen == ["deferred"]


def test_kill_descendants_is_only_for_a_dedicated_process():
    # In a process of its own: kill_descendants here would also kill the session's servers
    # (the S3 server, the Ray cluster) that pytest started.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import signal, subprocess, sys
        from headwater.runtime import deadline
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        deadline.kill_descendants(dedicated=False)
        kept = child.poll() is None  # a shared worker keeps its other children
        deadline.kill_descendants(dedicated=True)
        print(kept, child.wait(10) == -signal.SIGKILL)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def _sleep(seconds):  # a step of the user's (the timer defers an alarm landing in headwater's frames)
    time.sleep(seconds)


def test_a_wall_clock_jump_neither_fires_nor_delays_the_timer(monkeypatch, user_alarm_handler):
    # The deadline is on the monotonic clock: the wall clock jumping a day ahead (an NTP step,
    # a resumed VM) between launch and the step must not time the step out at once, and a jump
    # back must not give it a day more.
    at = deadline.task_deadline(0.5)
    assert abs(at - (time.monotonic() + 0.5)) < 0.2
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86_400)
    deadline.StepTimer("start", 0.5, at).run(_sleep, 0.05)  # finishes in time
    monkeypatch.setattr(time, "time", lambda: real() - 86_400)
    late = deadline.task_deadline(0.05)
    with pytest.raises(TimeoutException, match=r"Step start timed out after 0 hours, 0 minutes, 0.05 seconds"):
        deadline.StepTimer("start", 0.05, late).run(_sleep, 2)
