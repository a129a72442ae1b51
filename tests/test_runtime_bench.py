import json
import os
import re
import sys

import pytest
from edgesight.export.bench import BenchConfig, bench
from edgesight.runtime.bench import measure_latency


def test_latency_rows_cover_every_model_and_thread_setting(tiny_model):
    rows = measure_latency([str(tiny_model)], repeats=50, warmup=5)
    assert {(row["engine"], row["threads"]) for row in rows} == {("onnxruntime fp32", 1), ("onnxruntime fp32", os.cpu_count())}
    for row in rows:
        assert row["runs"] == 50 and 0 < row["median_us"] <= row["p99_us"]


def test_bench_of_an_onnx_file_times_onnxruntime_and_opencv_and_writes_the_table(tiny_model, tmp_path, capsys):
    rows = bench(BenchConfig(models=[str(tiny_model)], repeats=50, warmup=5, batch=4, rounds=2, cold_calls=3, out=str(tmp_path)))
    assert {row["engine"] for row in rows} == {"onnxruntime fp32", "opencv-dnn fp32"}
    assert "Keras and LiteRT rows need a training run folder" in capsys.readouterr().err  # why they are not in the table
    text = (tmp_path / "bench.md").read_text()
    assert text.startswith("Machine: ") and "| onnxruntime fp32 |" in text
    assert not (tmp_path / "bench.png").exists()  # nothing was scored without --data
    report = json.loads((tmp_path / "bench.json").read_text())
    for row in report["rows"]:
        for stats in row["latency"].values():
            assert stats["runs"] == 100 and len(stats["round_medians_us"]) == 2  # two rounds of 50
        for stats in row["cold_latency"].values():  # three calls a round, each after the caches were flushed
            assert stats["runs"] == 6 and stats["median_us"] <= stats["p90_us"]
    assert "µs cold, 1 thread" in text and f"{report['flush_bytes'] >> 20} MiB copy" in text


def test_bench_options_are_checked_before_any_work(tiny_model):
    import pytest

    for option, value in (("repeats", 0), ("rounds", 0), ("batch", 0), ("limit", 0), ("warmup", -1), ("cold_calls", -1)):
        with pytest.raises(ValueError, match=f"{option} must be at least"):
            bench(BenchConfig(models=[str(tiny_model)], **{option: value}))


def test_a_peer_whose_package_is_missing_gets_a_row_saying_so(tiny_model, monkeypatch):
    import sys

    from edgesight.export.bench import EngineSpec, measure_round
    from edgesight.runtime import Classifier

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # importing it now fails
    spec = Classifier(tiny_model).spec
    engines = [EngineSpec("m", "litert", "litert int8", "model.int8.tflite", spec),
               EngineSpec("m", "onnxruntime", "onnxruntime fp32", str(tiny_model), spec)]
    results = measure_round(engines, 1, BenchConfig(models=["m"], repeats=50, warmup=5, batch=4), {})
    assert results[("m", "litert int8")] == {"error": "ai_edge_litert.interpreter is not installed (pip install 'edgesight[bench]')"}
    assert results[("m", "onnxruntime fp32")]["latency"]["runs"] == 50


def test_bench_compares_int8_with_fp32_files_of_the_same_trained_weights(tmp_path):
    bench(BenchConfig(models=["gtsrb-tiny", "gtsrb-tiny-fp32", "gtsrb-fp32"], repeats=20, warmup=2, batch=2, rounds=1,
                      out=str(tmp_path), no_peers=True))
    report = json.loads((tmp_path / "bench.json").read_text())
    pairs = {(item["model"], item["threads"]) for item in report["int8_against_fp32"]}
    assert pairs == {("gtsrb-tiny", threads) for threads in report["threads"]}  # not against the other model's fp32 file
    text = (tmp_path / "bench.md").read_text()
    assert f"int8 on this CPU ({report['int8_outlook']['machine']})" in text
    assert re.search(r"×[^\n]*(int8 pays off here|int8 does not pay off here)", text)


def test_ratios_pair_the_engines_within_each_round():
    """A round the host slowed adds about as many microseconds to both engines: the ratio is taken within each round,
    then the median over rounds, and the table shows the rounds' range."""
    from edgesight.export.bench import format_table, latency_ratios, over_rounds

    def row(engine, medians):
        rounds = [{"runs": 10, "median_us": median, "p99_us": 2 * median} for median in medians]
        return {"model": "m", "engine": engine, "weights": "w", "bytes": 1024, "load_ms": 1.0,
                "latency": {"1": over_rounds(rounds), "2": over_rounds(rounds)}, "throughput_ips": {"1": 1.0, "2": 1.0}}

    rows = [row("onnxruntime int8", [100.0, 170.0, 120.0]), row("litert int8", [150.0, 210.0, 200.0])]
    assert rows[0]["latency"]["1"] == {"runs": 30, "median_us": 120.0, "p99_us": 240.0, "round_medians_us": [100.0, 170.0, 120.0]}
    (item, _) = latency_ratios(rows, "onnxruntime int8", "litert int8")
    assert (item["engine_us"], item["reference_us"]) == (120.0, 200.0)
    assert item["round_ratios"] == pytest.approx([1.5, 210 / 170, 200 / 120])
    assert item["ratio"] == pytest.approx(1.5)  # the median round's ratio, not 200 / 120 from the medians
    report = {"machine": "m", "threads": [1, 2], "repeats": 10, "warmup": 1, "rounds": 3, "batch": 4, "rows": rows,
              "against_litert": latency_ratios(rows, "onnxruntime int8", "litert int8"),
              "int8_outlook": {"machine": "x86_64", "expectation": "e"}, "int8_against_fp32": []}
    assert f"onnxruntime is 1.50× as fast ({210 / 170:.2f}–1.67× in 3 rounds)" in format_table(report)
    for item, cold_medians in zip(rows, ([300.0, 320.0, 310.0], [270.0, 300.0, 280.0])):  # cold, onnxruntime can trail
        rounds = [{"runs": 5, "median_us": median, "p90_us": median + 10} for median in cold_medians]
        item["cold_latency"] = {"1": over_rounds(rounds, tail="p90_us"), "2": over_rounds(rounds, tail="p90_us")}
    report |= {"cold_calls": 5, "flush_bytes": 64 << 20,
               "against_litert_cold": latency_ratios(rows, "onnxruntime int8", "litert int8", "cold_latency")}
    table = format_table(report)
    assert "| 310.0 |" in table and "1 thread(s), cold: onnxruntime int8 310.0 µs, LiteRT int8 280.0 µs: onnxruntime is 0.90× as fast" in table


def _benchmark_script(name: str):
    """A script under benchmarks/ (not a package) as a module."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_int8_path_parts_times_every_node_of_the_optimized_graph(tmp_path):
    """benchmarks/int8_path_parts.py: one row per node of the graph onnxruntime runs, and the path's parts."""
    assert _benchmark_script("int8_path_parts").main(["gtsrb-tiny", "--repeats", "50", "--out", str(tmp_path)]) == 0
    parts = json.loads((tmp_path / "parts.json").read_text())["parts"]
    nodes = [key.split(" ", 1)[1] for key in parts if key[:2].isdigit()]
    assert nodes[0] == "Cast" and nodes[-1] == "Softmax" and nodes.count("QLinearConv") == 4
    assert {"whole path (classify_boxes)", "onnxruntime run", "top-1"} <= set(parts)
    assert all(figures["runs"] == 50 and figures["median_us"] > 0 for figures in parts.values())


def test_int8_path_parts_times_litert_beside_it_when_given_its_file(tmp_path):
    """--litert: LiteRT's whole path and its set, invoke and get join the same interleaved table."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT lives in the [bench] extra")
    import tensorflow as tf

    litert_path = tmp_path / "model.tflite"  # any LiteRT file taking the model's uint8 32x32 input will do for timing
    litert_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(_benchmark_script("engine_call_cost").cast_and_mean_model()).convert())
    parts_script = _benchmark_script("int8_path_parts")
    assert parts_script.main(["gtsrb-tiny", "--repeats", "50", "--litert", str(litert_path), "--out", str(tmp_path)]) == 0
    parts = json.loads((tmp_path / "parts.json").read_text())["parts"]
    assert {"LiteRT whole path (as bench times it)", "LiteRT set, invoke, get", "onnxruntime run"} <= set(parts)
    assert all(figures["runs"] == 50 for figures in parts.values())


def test_engine_call_cost_times_one_model_in_both_engines(tmp_path):
    """benchmarks/engine_call_cost.py: the same two-operation model, converted both ways, timed in each engine."""
    pytest.importorskip("ai_edge_litert", reason="LiteRT lives in the [bench] extra")
    pytest.importorskip("tf2onnx", reason="the conversion lives in the [export] extra")
    assert _benchmark_script("engine_call_cost").main(["--repeats", "100", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "call_cost.json").read_text())
    assert set(report["calls"]) == {"onnxruntime", "litert"}
    assert all(figures["runs"] == 100 and figures["median_us"] > 0 for figures in report["calls"].values())
    assert report["onnxruntime_over_litert"] > 0


def test_proposal_coverage_counts_the_signs_each_locator_covers(tmp_path):
    """benchmarks/proposal_coverage.py: every red ring of the fake scenes is covered by the colour locator's proposals."""
    from fakes import write_road_scenes

    coverage = _benchmark_script("proposal_coverage")
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    assert coverage.main(["--data", str(scenes), "colour=colour", "both=colour,sign-locator@0.3", "--out", str(tmp_path)]) == 0
    rows = {row["locator"]: row for row in json.loads((tmp_path / "coverage.json").read_text())["rows"]}
    assert rows["colour"]["covered"] == rows["colour"]["signs_24px_and_more"] == 3
    assert rows["colour"]["uncovered_per_class"] == {}
    assert rows["both"]["centre_score"] == 0.3 and rows["both"]["covered"] == 3
    assert rows["both"]["proposals_per_frame"] >= rows["colour"]["proposals_per_frame"] > 0
    assert "| colour | colour | - | 3 of 3 |" in (tmp_path / "coverage.md").read_text()


@pytest.mark.parametrize("spec", ["colour", "=colour", "both=colour@1.5", "both=colour@high"])
def test_proposal_coverage_refuses_a_malformed_locator(spec):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="NAME=LOCATORS|CENTRE_SCORE"):
        _benchmark_script("proposal_coverage").parse_locators(spec)


def test_compare_sign_finders_pairs_each_finder_with_the_first_sign_by_sign(tiny_model, tmp_path):
    """benchmarks/compare_sign_finders.py: a finder compared with itself gains and loses no sign (p = 1)."""
    from fakes import write_road_scenes

    compare = _benchmark_script("compare_sign_finders")
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    finders = [f"first={tiny_model}@colour", f"again={tiny_model}@colour"]
    assert compare.main(["--data", str(scenes), *finders, "--rounds", "1", "--out", str(tmp_path)]) == 0
    first, again = json.loads((tmp_path / "results.json").read_text())["finders"]
    assert "sign_test_p" not in first and first["signs_24px_and_more"] == 3
    assert (again["found_only_here"], again["found_only_by_first"], again["sign_test_p"]) == (0, 0, 1.0)
    assert "| +0, -0 (p = 1.00) |" in (tmp_path / "results.md").read_text()


def test_a_finder_spec_takes_a_centre_score_a_colour_gate_and_a_screen_in_any_order_and_refuses_anything_else():
    import argparse

    from edgesight.runtime.learned_locate import COLOUR_GATE
    from edgesight.runtime.signs import SCREEN_THRESHOLD

    script = _benchmark_script("compare_sign_finders")
    parse, spec_of = script.parse_finder, script.FinderSpec
    assert parse("a=gtsrb-locate@colour,sign-locator") == spec_of("a", "gtsrb-locate", ["colour", "sign-locator"], None, COLOUR_GATE,
                                                               "auto", SCREEN_THRESHOLD)
    assert parse("a=m@colour,sign-locator@0.3@gate=0") == spec_of("a", "m", ["colour", "sign-locator"], 0.3, 0.0)
    assert parse("a=m@colour@gate=0.1@0.2") == spec_of("a", "m", ["colour"], 0.2, 0.1)
    assert parse("a=m@colour@screen=s.onnx:0.9@0.2") == spec_of("a", "m", ["colour"], 0.2, COLOUR_GATE, "s.onnx", 0.9)
    assert parse("a=m@colour@screen=none").screen == "none"
    assert parse("a=m@colour@roi=0,0.1,1,0.8@0.2") == spec_of("a", "m", ["colour"], 0.2, roi="0,0.1,1,0.8")
    with pytest.raises(argparse.ArgumentTypeError, match=r"roi must be LEFT,TOP,RIGHT,BOTTOM.*in 'a=m@colour@roi=0,1'"):
        parse("a=m@colour@roi=0,1")
    for spec in ("a=m", "=m@colour", "a=m@colour@1.5", "a=m@colour@gate=1", "a=m@colour@gates=0.1", "a=m@colour@0.1@0.2",
                 "a=m@colour@screen=s.onnx:0", "a=m@colour@screen=s.onnx:1.5", "a=m@colour@0.1@gate=0@screen=s@0.2"):
        with pytest.raises(argparse.ArgumentTypeError, match="CENTRE_SCORE"):
            parse(spec)


@pytest.mark.parametrize(("wins", "losses", "p"), [(0, 0, 1.0), (3, 3, 1.0), (5, 0, 2 / 32), (10, 1, 2 * 12 / 2048), (1, 10, 2 * 12 / 2048)])
def test_the_sign_test_is_exact_and_two_sided(wins, losses, p):
    assert _benchmark_script("compare_sign_finders").sign_test_p(wins, losses) == pytest.approx(p)


def test_camera_conditions_move_the_true_boxes_with_the_pixels_and_score_each_condition(tmp_path, monkeypatch):
    """benchmarks/camera_conditions.py: each condition's frames and truth, and one eval-frames report per condition."""
    from pathlib import Path

    import cv2
    import numpy as np
    from fakes import write_road_scenes

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # it shares close_up_scenes' writer
    conditions = _benchmark_script("camera_conditions")
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    assert conditions.scaled_box((60, 40, 99, 79), 0.5, 160, 100) == (30, 20, 49, 39)  # 40 px wide, 20 after
    assert conditions.scaled_box((300, 180, 319, 199), 2.0, 640, 400) == (600, 360, 639, 399)
    half = next(condition for condition in conditions.CONDITIONS if condition.name == "640-wide")
    frames, truth = conditions.condition_scenes(str(scenes), half, seed=0)
    first = cv2.imdecode(np.frombuffer(frames["00000.png"], np.uint8), cv2.IMREAD_COLOR)
    assert first.shape == (round(200 * half.scale), round(320 * half.scale), 3)
    assert truth[0] == "00000.png;" + ";".join(map(str, conditions.scaled_box((60, 40, 100, 80), half.scale, 151, 94))) + ";2"
    assert conditions.main(["--data", str(scenes), "--out", str(tmp_path / "out"), "--conditions", "recorded", "dusk"]) == 0
    rows = json.loads((tmp_path / "out" / "conditions.json").read_text())["conditions"]
    assert [row["condition"] for row in rows] == ["recorded", "dusk"] and all(row["signs_24px_and_more"] == 3 for row in rows)
    assert not list((tmp_path / "out").glob("*.zip"))  # the frames are not kept, the reports are
    assert conditions.main(["--data", str(scenes), "--out", str(tmp_path / "colour"), "--conditions", "blur", "--locator", "colour"]) == 0
    colour_only = json.loads((tmp_path / "colour" / "conditions.json").read_text())
    assert colour_only["locators"] == ["colour"] and "`colour`" in (tmp_path / "colour" / "conditions.md").read_text()
    assert json.loads((tmp_path / "colour" / "blur" / "eval_frames.json").read_text())["config"]["locator"] == ["colour"]


def test_speed_goals_measure_both_settings_each_round_and_judge_every_goal(tmp_path):
    """benchmarks/speed_goals.py: eval-frames on the whole frame and the region each round, goals judged as stated."""
    from fakes import write_road_scenes

    goals = _benchmark_script("speed_goals")
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    assert goals.main(["--scenes", str(scenes), "--rounds", "2", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "speed_goals.json").read_text())
    assert sorted(path.name for path in (tmp_path / "out").glob("eval-frames-*")) == [
        "eval-frames-region-1", "eval-frames-region-2", "eval-frames-whole-1", "eval-frames-whole-2"]
    assert len(report["goals"]) == 6 and all(len(row["measured"]) == 2 for row in report["goals"] if "ms per frame" in row["goal"])
    frames = {"whole frame": [{"ms_per_frame": {"median": ms}, "recall_24px_and_more": 0.92, "signs_24px_and_more": 126,
                               "false_detections_per_frame": 0.05} for ms in (9.9, 10.1)]}
    bench = {"rows": [{"engine": "onnxruntime int8", "latency": {"1": {"median_us": 49.0, "round_medians_us": [48.0, 49.0, 51.0]}}}],
             "against_litert": [{"threads": 1, "ratio": 1.55, "engine_us": 49.0, "reference_us": 76.0, "round_ratios": [1.49, 1.55, 1.6]}]}
    rows, table = goals.goals_table(frames, bench)
    assert [row["met"] for row in rows] == [False, True, True, False, False]  # met only if every round meets it
    assert "| ≤ 10 ms per frame, one core (whole frame) | 9.90 and 10.10 ms | not met |" in table


def test_live_stream_runs_the_demo_on_a_served_scene_stream_at_each_thread_setting(tmp_path, monkeypatch):
    """benchmarks/live_stream.py: scenes served as MJPEG by a process of their own, the demo timed per thread setting."""
    from pathlib import Path

    from fakes import write_road_scenes

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the camera process imports it
    live = _benchmark_script("live_stream")
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    assert live.main(["--scenes", str(scenes), "--fps", "50", "--frames", "5", "--threads", "1", "2", "--rounds", "1",
                      "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "live_stream.json").read_text())
    assert [run["threads"] for run in report["runs"]] == [1, 2] and all(run["fps"] > 0 for run in report["runs"])
    assert "| 2 | " in (tmp_path / "out" / "live_stream.md").read_text()
