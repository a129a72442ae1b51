import os

from edgesight.export.bench import BenchConfig, bench
from edgesight.runtime.bench import measure_latency


def test_latency_rows_cover_every_model_and_thread_setting(tiny_model):
    rows = measure_latency([str(tiny_model)], repeats=50, warmup=5)
    assert {(row["engine"], row["threads"]) for row in rows} == {("onnxruntime fp32", 1), ("onnxruntime fp32", os.cpu_count())}
    for row in rows:
        assert row["runs"] == 50 and 0 < row["median_us"] <= row["p99_us"]


def test_bench_of_an_onnx_file_times_onnxruntime_and_opencv_and_writes_the_table(tiny_model, tmp_path):
    rows = bench(BenchConfig(models=[str(tiny_model)], repeats=50, warmup=5, batch=4, out=str(tmp_path)))
    assert {row["engine"] for row in rows} == {"onnxruntime fp32", "opencv-dnn fp32"}
    text = (tmp_path / "bench.md").read_text()
    assert text.startswith("Machine: ") and "| onnxruntime fp32 |" in text
    assert not (tmp_path / "bench.png").exists()  # nothing was scored without --data
    assert (tmp_path / "bench.json").is_file()
