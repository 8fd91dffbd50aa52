"""bench/concurrency.py's pure parts: percentiles and the table (ratios, the summary lines)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.concurrency import markdown, pct


def peer(tok_s: tuple[float, float, float], idle: float, chat: float, prompt: float) -> dict:
    return {"aggregate": [{"tok_s": t, "per_stream_tok_s": t / n} for t, n in
                          zip(tok_s, (1, 2, 4), strict=True)],
            "infill_idle": {"ttft_s": idle / 2, "total_s": idle},
            "infill_during_chat": {"ttft_s": chat / 2, "total_s": chat},
            "infill_during_prompt": {"ttft_s": prompt / 2, "total_s": prompt}}


def test_percentiles_pick_from_the_sorted_values():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert pct(values, 0.5) == 3.0 and pct(values, 0.99) == 5.0 and pct([], 0.5) != pct([], 0.5)


def test_the_table_sets_ours_beside_llama_server_with_ratios_and_the_goals_figures():
    result = {"machine": "AMD EPYC, 2 cores", "model": "qwen", "threads": 2, "n_ctx": 32768,
              "n_batch": 512, "parallel": 4, "date": "2026-12-07",
              "peers": {"backend": peer((20.0, 34.0, 50.0), 1.0, 1.2, 1.8),
                        "llama-server": peer((21.0, 33.0, 40.0), 1.0, 1.1, 9.0)},
              "one_stream_before": {"revision": "abc", "per_stream_tok_s": 20.0},
              "soak": {"seconds": 600, "counts": {"infill": 300}, "errors": [],
                       "rss_mib_start": 1000.0, "rss_mib_end": 1010.0, "rss_growth": 0.01,
                       "infill_idle_s": 1.0, "infill_p50_s": 1.1, "infill_p99_s": 1.9,
                       "infill_p99_ratio": 1.9}}
    table = markdown(result)
    assert "AMD EPYC, 2 cores" in table and "`-np 4 -kvu`" in table
    assert "| aggregate tok/s, 4 streams | 50.0 | 40.0 | 1.25x |" in table
    assert "| /infill during a ~20k-token prompt: last token, s | 1.80 | 9.00 | 0.20x |" in table
    assert "4 streams against 1: 2.50x" in table and "during a chat against idle: 1.20x" in table
    assert "one stream: 20.0 tok/s against 20.0 before batching (abc): 1.00x" in table
    assert "0 errors" in table and "+1.0 %" in table and "1.90x idle" in table
