"""LogCap (pure): a log within the cap is kept whole; a longer one keeps its first and last lines, whole,
with a line saying how much was left out, whatever the chunks it arrives in."""

from __future__ import annotations

import re

import pytest

from services.operator.logs import LogCap

MARKER = re.compile(rb"\[dtpoc: (\d+) bytes of this log were left out here: it has (\d+) bytes, .*\]\n")


def capped(content: bytes, max_bytes: int, chunk: int) -> LogCap:
    cap = LogCap(max_bytes)
    for start in range(0, len(content), chunk):
        cap.feed(content[start : start + chunk])
    return cap


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_a_log_within_the_cap_is_kept_whole(chunk: int) -> None:
    content = b"".join(b"line %d\n" % i for i in range(100))
    for limit in (len(content), len(content) + 1):
        cap = capped(content, limit, chunk)
        assert (cap.content(), cap.truncated, cap.total) == (content, False, len(content))


@pytest.mark.parametrize("chunk", [1, 13, 100_000])
def test_a_longer_log_keeps_whole_first_and_last_lines_and_says_what_was_left_out(chunk: int) -> None:
    lines = [b"step %04d: queue %d\n" % (i, i % 9) for i in range(1000)]
    content = b"".join(lines)
    cap = capped(content, 1000, chunk)
    assert cap.truncated and cap.total == len(content)
    kept = cap.content()
    found = MARKER.search(kept)
    assert found is not None
    head, tail = kept[: found.start()], kept[found.end() :]
    assert content.startswith(head) and content.endswith(tail)
    assert head.endswith(b"\n") and tail in b"".join(lines[-30:])  # whole lines only
    assert tail.startswith(b"step ") and len(head) <= 500 and len(tail) <= 500
    assert int(found.group(1)) == len(content) - len(head) - len(tail)
    assert int(found.group(2)) == len(content)


def test_one_line_longer_than_the_cap_is_cut_inside_it() -> None:
    content = b"x" * 5000
    kept = capped(content, 1000, 64).content()
    found = MARKER.search(kept)
    assert found is not None
    assert kept[: found.start()] == b"x" * 500 + b"\n"  # the marker on a line of its own
    assert kept[found.end() :] == b"x" * 500
    assert int(found.group(1)) == 4000


def test_a_cap_below_two_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        LogCap(1)
