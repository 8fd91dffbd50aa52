"""The status line after an answer: the wait for the model's turn only when there was one."""

from __future__ import annotations

import pytest

from repl.display import status_line

STATS = {"model": "qwen", "language": "python", "ttft_ms": 420.0, "tok_s": 21.5,
         "reduction": 0.25}


@pytest.mark.parametrize(("queue_ms", "shown"), [
    (None, None),  # llama-server upstream: not known
    (0.0, None),
    (99.9, None),  # one decode step of the backend, not a queue
    (100.0, "queued 0.1 s"),
    (12_345.0, "queued 12.3 s"),
])
def test_the_queue_wait_is_shown_when_there_was_one(queue_ms, shown):
    line = status_line({**STATS, "queue_ms": queue_ms}, 40, None, None)
    parts = line.strip("[]").split(" · ")
    assert parts[:2] == ["qwen", "python"]
    if shown is None:
        assert "queued" not in line
        assert parts[2] == "420 ms TTFT"
    else:
        assert parts[2] == shown
        assert parts[3] == "420 ms TTFT"
