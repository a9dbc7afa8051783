"""Prometheus text rendering and the latency histogram behind it."""

from __future__ import annotations

from anychat.metrics import COMMIT_BUCKETS, Histogram, ServerStats, render_prometheus


def test_histogram_buckets_are_cumulative() -> None:
    hist = Histogram((0.01, 0.1, 1.0))
    for seconds in (0.005, 0.01, 0.05, 0.5, 3.0):
        hist.observe(seconds)
    assert hist.cumulative() == (2, 3, 4, 5)
    assert hist.count == 5 and abs(hist.total - 3.565) < 1e-9


def test_rendering_is_the_text_format() -> None:
    hist = Histogram()
    hist.observe(0.002)
    stats = ServerStats(
        serving=False,
        connections={'we"ird\\': 1},
        commit_buckets=hist.cumulative(),
        commit_count=hist.count,
        commit_seconds=hist.total,
    )
    text = render_prometheus(stats).decode()
    lines = text.splitlines()
    assert text.endswith("\n")
    assert "anychat_up 0" in lines
    assert 'anychat_connections{protocol="we\\"ird\\\\"} 1' in lines
    buckets = [line for line in lines if line.startswith("anychat_store_commit_seconds_bucket")]
    assert len(buckets) == len(COMMIT_BUCKETS) + 1 and buckets[-1].endswith('"+Inf"} 1')
    assert 'anychat_store_commit_seconds_bucket{le="0.001"} 0' in lines
    assert 'anychat_store_commit_seconds_bucket{le="0.0025"} 1' in lines
    # Every sample has a TYPE line before it.
    typed = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    for line in lines:
        if line and not line.startswith("#"):
            name = line.split("{")[0].split()[0]
            assert any(name == t or name.startswith(t + "_") for t in typed), line
