"""Log files: timestamp prefixes parsed and stripped; lines without a prefix kept."""

from __future__ import annotations

import pytest

from headwater.store.logs import iter_log, parse_line, parse_log, stamp, strip_log, strip_log_bytes

T1, T2 = 1763841234.123456, 1763841235.5


def _line(ts: float, text: str) -> bytes:
    return stamp(ts) + text.encode() + b"\n"


def test_stamp_format() -> None:
    assert stamp(T1) == b"\x1e1763841234.123456\x1f"
    assert stamp(T2) == b"\x1e1763841235.500000\x1f"


def test_parse_log_mixed_lines() -> None:
    data = _line(T1, "hello") + b"from C\n" + _line(T2, "bye")
    assert parse_log(data) == [(T1, "hello"), (None, "from C"), (T2, "bye")]


def test_parse_log_keeps_empty_lines_and_a_partial_last_line() -> None:
    data = _line(T1, "") + b"\n" + stamp(T2) + b"no newline yet"
    assert parse_log(data) == [(T1, ""), (None, ""), (T2, "no newline yet")]


@pytest.mark.parametrize("data", [b"", b"\n"])
def test_parse_log_of_empty_logs(data: bytes) -> None:
    assert parse_log(data) == ([] if not data else [(None, "")])


def test_strip_log_keeps_line_structure() -> None:
    data = _line(T1, "a") + b"raw\n" + _line(T2, "b") + stamp(T2) + b"partial"
    assert strip_log(data) == "a\nraw\nb\npartial"
    assert strip_log_bytes(b"plain\n") == b"plain\n"


def test_prefix_in_the_middle_of_a_line() -> None:
    # A C-level write without a newline, then a Python line: the prefix lands mid-line.
    data = b"c-level " + _line(T1, "python")
    assert strip_log(data) == "c-level python\n"
    assert parse_line(data.rstrip(b"\n")) == (T1, b"c-level python")


def test_look_alikes_are_text() -> None:
    # Only RS <decimal> US is a prefix; anything else stays as written.
    for raw in (b"\x1eabc\x1fx", b"\x1e123", b"a\x1fb", b"\x1e\x1fx"):
        assert parse_line(raw) == (None, raw)
        assert strip_log_bytes(raw) == raw


def test_invalid_utf8_is_replaced() -> None:
    assert parse_log(stamp(T1) + b"\xff ok\n") == [(T1, "\ufffd ok")]
    assert strip_log(b"\xfe\n") == "\ufffd\n"


def test_iter_log_gives_bytes() -> None:
    assert list(iter_log(_line(T1, "é"))) == [(T1, "é".encode())]
