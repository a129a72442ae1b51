from edgesight.runtime.bench import BenchConfig, bench, measure_latency


def test_bench_rows_cover_every_model_runtime_and_thread_setting(tiny_model, tmp_path):
    rows = measure_latency([str(tiny_model)], repeats=50, warmup=5, opencv=True)
    assert {(row["runtime"], row["threads"] == 1) for row in rows} == {
        ("onnxruntime", True), ("onnxruntime", False), ("opencv-dnn", True), ("opencv-dnn", False)}
    for row in rows:
        assert "error" in row or (row["runs"] == 50 and 0 < row["median_us"] <= row["p99_us"])


def test_bench_writes_a_markdown_table_naming_the_machine(tiny_model, tmp_path):
    bench(BenchConfig(models=[str(tiny_model)], repeats=50, warmup=5, markdown=str(tmp_path / "bench.md")))
    text = (tmp_path / "bench.md").read_text()
    assert text.startswith("Machine: ") and "| onnxruntime | 1 |" in text
