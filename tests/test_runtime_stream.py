"""The robot API: `stream(model, source)` yields results; a dropped stream shows up as state changes, then resumes."""
import json
import threading
import time

import pytest
from edgesight.runtime.stream import StreamOptions, stream
from fakes import MjpegServer


def test_stream_over_a_video_gives_each_frame_once_with_its_timings(tiny_model, tiny_video):
    results = list(stream(str(tiny_model), str(tiny_video), StreamOptions(top_k=2)))
    assert [r.frame.index for r in results] == list(range(30))
    assert all(r.source_state == "file" and len(r.detections) == 1 and len(r.detections[0][1]) == 2 for r in results)
    assert all(0 <= r.frame_age_ms <= r.end_to_end_ms and r.latency_ms <= r.end_to_end_ms for r in results)


def test_leaving_the_loop_early_releases_the_source(tiny_model, tiny_video):
    results = stream(str(tiny_model), str(tiny_video))
    first = next(results)
    results.close()
    assert first.frame.index == 0
    with pytest.raises(StopIteration):
        next(results)


def test_a_frame_rate_cap_skips_frames_instead_of_queueing_them(tiny_model, tiny_video):
    assert len(list(stream(str(tiny_model), str(tiny_video), StreamOptions(max_fps=1.0)))) == 1  # 30 frames read in well under 1 s
    with pytest.raises(ValueError, match="max_fps must be > 0"):
        next(stream(str(tiny_model), str(tiny_video), StreamOptions(max_fps=0.0)))


def test_a_dropped_stream_is_reported_as_reconnecting_then_connected_and_the_results_go_on(tiny_model):
    server = MjpegServer().start()
    results = stream(str(tiny_model), server.url, lost_after_s=20)
    try:
        seen = []
        for result in results:
            seen.append(result.frame.index if result.frame else result.source_state)
            if len(seen) == 5:
                server.stop()
            if result.source_state == "reconnecting" and result.frame is None:
                server.start()
            if seen.count("connected") and len(seen) - seen.index("connected") > 3:
                break
    finally:
        results.close()
        server.stop()
    reconnecting, connected = seen.index("reconnecting"), seen.index("connected")
    assert 5 <= reconnecting < connected
    frames = [item for item in seen if isinstance(item, int)]
    assert frames == sorted(set(frames))  # never the same frame twice, even across the outage


def test_demo_json_lines_carry_the_stream_state_and_the_summary_the_capture_to_result_latency(tiny_model, tmp_path, capsys):
    from edgesight.camera_demo.loop import DemoConfig, run_demo

    server = MjpegServer().start()
    threading.Timer(1.0, server.stop).start()
    threading.Timer(2.5, server.start).start()
    jsonl = tmp_path / "live.jsonl"
    started = time.monotonic()
    summary = run_demo(DemoConfig(model=str(tiny_model), source=server.url, no_window=True, jsonl=str(jsonl), max_frames=60))
    server.stop()
    assert time.monotonic() - started < 20
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    events = [r["state"] for r in records if r.get("event") == "source_state"]
    assert events[:2] == ["reconnecting", "connected"]
    assert sum("frame" in r for r in records) == summary.frames == 60
    assert 0 < summary.end_to_end_ms_median <= summary.end_to_end_ms_p99
    assert "capture to result median" in capsys.readouterr().out


def test_the_robot_example_runs_as_documented(tiny_model, tiny_video):
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "robot_stream.py"
    done = subprocess.run([sys.executable, str(example), str(tiny_video), "--model", str(tiny_model)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    gone = subprocess.run([sys.executable, str(example), "http://127.0.0.1:9/none.mjpg", "--model", str(tiny_model)],
                          capture_output=True, text=True, timeout=120)
    assert gone.returncode == 1 and "stopped: " in gone.stdout and "cannot be opened" in gone.stdout
