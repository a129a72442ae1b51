"""train -> export -> quantize -> demo through the `edgesight` command, on tiny data in the real formats."""
import contextlib
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

pytest.importorskip("tf2onnx", reason="the pipeline test needs the [train] and [export] extras")

from edgesight.cli.main import main  # noqa: E402

EDGESIGHT = [sys.executable, "-m", "edgesight.cli.main"]
# The card's latency table times 2,000 runs per file and thread setting by default; 50 keep it and save ~10 s an export.
QUICK_CARD = ("--card-latency-runs", 50)


def int8_conv_weights(model: onnx.ModelProto) -> list[np.ndarray]:
    return [onnx.numpy_helper.to_array(tensor) for tensor in model.graph.initializer
            if tensor.data_type == onnx.TensorProto.INT8 and len(tensor.dims) == 4]


def run(*arguments, expect=0):
    """`edgesight ARGUMENTS` in this process: each new interpreter would spend ~6 s importing TensorFlow again.

    The real entry point is run as a command by `test_bad_input_gets_one_line_errors_not_tracebacks`.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            returncode = main([str(a) for a in arguments])
        except SystemExit as exit_:  # argparse refusing an option
            returncode = exit_.code
    result = subprocess.CompletedProcess(arguments, returncode, stdout.getvalue(), stderr.getvalue())
    assert result.returncode == expect, result.stderr[-3000:]
    return result


def run_command(*arguments, expect=0):
    """`edgesight ARGUMENTS` as a new process, as a user runs it."""
    result = subprocess.run(EDGESIGHT + [str(a) for a in arguments], capture_output=True, text=True, timeout=600)
    assert result.returncode == expect, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def exported_run(tiny_gtsrb, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pipeline") / "run with spaces"
    run("train", "--data", tiny_gtsrb, "--run-dir", run_dir, "--epochs", 4, "--batch-size", 16, "--val-fraction", 0.34)
    # 24 test images: one image is 4 points, so the default 0.3-point gate means nothing here.
    run("export", run_dir, "--gate-pp", 100, "--calibration-images", 40, *QUICK_CARD)
    return run_dir


def test_export_writes_contract_models_and_reports(exported_run):
    report = json.loads((exported_run / "export_report.json").read_text())
    assert report["keras_vs_onnx_fp32_max_abs_difference"] < 1e-4
    assert report["fp32"]["test_accuracy"] == pytest.approx(report["keras_test_accuracy"], abs=1e-9)
    assert (exported_run / "export_report.md").read_text().startswith("# Export report")
    assert "median and p99 of 50 interleaved runs" in (exported_run / "MODEL_CARD.md").read_text()
    fp32, int8 = onnx.load(exported_run / "model.onnx"), onnx.load(exported_run / "model.int8.onnx")
    for model, accuracy in ((fp32, report["fp32"]["test_accuracy"]), (int8, report["int8"]["test_accuracy"])):
        props = {p.key: json.loads(p.value) for p in model.metadata_props}  # every value JSON, as outside tools parse them
        assert props["edgesight.format"] == 1 and len(props["edgesight.labels"]) == 43
        assert props["edgesight.input"] == {"name": "image", "height": 32, "width": 32, "channels": 3,
                                            "layout": "NHWC", "color": "RGB", "dtype": "uint8"}
        assert props["edgesight.metrics"]["test_accuracy"] == accuracy
        assert props["edgesight.provenance"]["source_sha256"]
    assert "edgesight.quantization" not in {p.key for p in fp32.metadata_props}
    quantization = json.loads(next(p.value for p in int8.metadata_props if p.key == "edgesight.quantization"))
    assert quantization["format"] == "QDQ" and quantization["activation_type"] == "QUInt8"
    # 7-bit weights by default: AVX2 CPUs without VNNI saturate in 16 bits with full-range ones
    assert quantization["weight_bits"] == 7
    assert all(np.abs(weights.astype(int)).max() <= 64 for weights in int8_conv_weights(int8))  # pairs of 255 x 64 fit in int16
    assert sum(node.op_type == "QuantizeLinear" for node in int8.graph.node) >= 5
    softmax = int8.graph.node[-1]
    assert softmax.op_type == "Softmax"  # kept in float: probabilities sum to 1
    # ... and fed float logits, not logits rounded to 8 bits by a Quantize/Dequantize pair
    producer = next(node for node in int8.graph.node if softmax.input[0] in node.output)
    assert producer.op_type == "Gemm" and quantization["float_inputs_kept"] == [softmax.input[0]]


def test_export_report_compares_keras_fp32_and_int8_per_class(exported_run):
    report = json.loads((exported_run / "export_report.json").read_text())
    parity = report["parity"]
    assert parity["images"] == 24
    assert parity["top1"]["onnx_int8"] == pytest.approx(report["int8"]["test_accuracy"])
    assert parity["top1"]["keras"] == pytest.approx(parity["top1"]["onnx_fp32"])
    assert parity["argmax_agreement"]["keras_onnx_fp32"] == 1.0
    assert parity["output_difference"]["onnx_fp32_int8"]["row_sum_max_deviation"] < 1e-5
    assert sum(entry["images"] for entry in parity["per_class"]) == 24
    assert "## Parity on 24 test images" in (exported_run / "export_report.md").read_text()


def test_export_reports_int8_accuracy_with_exact_arithmetic_beside_this_cpus(exported_run):
    from edgesight.export.exact_int8 import exact_int8_probabilities
    from edgesight.runtime import Classifier

    exact = json.loads((exported_run / "export_report.json").read_text())["int8"]["exact_arithmetic"]
    assert 0 <= exact["test_accuracy"] <= 1 and exact["this_cpu"]["expectation"]
    assert "with exact int8 arithmetic" in (exported_run / "export_report.md").read_text()
    assert "with exact int8 arithmetic" in (exported_run / "MODEL_CARD.md").read_text()
    images = np.random.default_rng(7).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    int8_path = exported_run / "model.int8.onnx"
    exact_probabilities = exact_int8_probabilities(int8_path, images)
    # 7-bit weights: no CPU's kernels saturate, so they compute what the unfused graph computes ...
    np.testing.assert_allclose(exact_probabilities, Classifier(int8_path).probabilities(images), atol=0.02)
    # ... which is int8 arithmetic, not the float model
    assert np.abs(exact_probabilities - Classifier(exported_run / "model.onnx").probabilities(images)).max() > 1e-4


def test_int8_probabilities_still_sum_to_one(exported_run):
    from edgesight.runtime import Classifier

    classifier = Classifier(exported_run / "model.int8.onnx")
    batch = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(classifier.probabilities(batch).sum(axis=1), 1.0, atol=1e-5)


def test_demo_predict_and_eval_run_on_the_exported_model(exported_run, tiny_video, tiny_gtsrb, tmp_path):
    model = exported_run / "model.int8.onnx"
    result = run("demo", "--model", model, "--source", tiny_video, "--no-window",
                 "--jsonl", tmp_path / "frames.jsonl", "--save-video", tmp_path / "annotated.mp4")
    assert "30 frames" in result.stdout and "frames/s" in result.stdout
    assert len((tmp_path / "frames.jsonl").read_text().splitlines()) == 30
    assert (tmp_path / "annotated.mp4").stat().st_size > 0
    image = tmp_path / "sign.png"
    import cv2
    from fakes import sign_image
    cv2.imwrite(str(image), sign_image(14, np.random.default_rng(5))[0])
    lines = run("predict", model, image, "--jsonl").stdout.splitlines()
    record = json.loads(lines[0])
    assert record["source"] == str(image) and record["detections"][0]["label"]
    assert "accuracy" in run("eval", model, "--data", tiny_gtsrb).stdout
    assert "confusions must be 0 or more" in run("eval", model, "--data", tiny_gtsrb, "--confusions", "-1", expect=2).stderr


def test_int8_below_the_gate_is_not_installed(exported_run, tmp_path):
    from edgesight.export.config import ExportConfig
    from edgesight.export.pipeline import ExportError, export_run

    run_dir = tmp_path / "copy"
    shutil.copytree(exported_run, run_dir)
    (run_dir / "model.int8.onnx").unlink()
    with pytest.raises(ExportError, match="more than the gate of -1.0 points"):
        export_run(ExportConfig(run_dir=str(run_dir), gate_pp=-1.0, calibration_images=40, max_float_nodes=0))
    assert not (run_dir / "model.int8.onnx").exists()
    assert (run_dir / "model.int8.candidate.onnx").is_file()
    assert json.loads((run_dir / "export_report.json").read_text())["gate_passed"] is False


def test_bad_input_gets_one_line_errors_not_tracebacks(tmp_path):
    result = run_command("train", "--data", tmp_path, "--run-dir", tmp_path / "run", expect=2)
    assert "expected the official GTSRB archive" in result.stderr and "Traceback" not in result.stderr
    assert "An image-folder dataset of your own trains under a task name of your choice: --task NAME." in result.stderr
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    result = run("predict", tmp_path / "bad.onnx", tmp_path / "x.png", expect=2)
    assert "bad.onnx: not a loadable ONNX model" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "model.keras").write_bytes(b"PK\x03\x04")
    result = run("predict", tmp_path / "run" / "model.keras", tmp_path / "x.png", expect=2)
    assert f"model.keras: a Keras file; the runtime reads ONNX files, which `edgesight export {tmp_path / 'run'}` writes" in result.stderr
    result = run("export", tmp_path / "nowhere", expect=2)
    assert "model.keras missing" in result.stderr


@pytest.mark.parametrize("kind, command", [(None, "train"), ("locator", "train-locator")])
def test_exporting_a_run_whose_training_stopped_says_how_far_it_got_and_how_to_finish_it(tmp_path, kind, command):
    from edgesight.export.config import ExportConfig
    from edgesight.export.pipeline import ExportError, export_run

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"train": {}} | ({"kind": kind} if kind else {})))
    (run_dir / "state.json").write_text(json.dumps({"epochs_done": 3, "total_epochs": 16, "checkpoint": "checkpoints/epoch-003.keras"}))
    with pytest.raises(ExportError, match=rf"model.keras missing; .* Its training stopped after epoch 3 of 16; finish it with "
                                          rf"`edgesight {command} --resume --run-dir {run_dir}`"):
        export_run(ExportConfig(run_dir=str(run_dir)))


def test_a_users_image_folder_dataset_trains_and_exports(tmp_path):
    import cv2
    from fakes import CLASS_STYLES, sign_image

    rng = np.random.default_rng(2)
    names = {1: "round", 38: "triangle"}
    for class_id, name in names.items():
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for index in range(25):
            cv2.imwrite(str(tmp_path / "shapes" / name / f"{index:03d}.png"), cv2.resize(sign_image(class_id, rng)[0], (32, 32)))
    assert set(names) <= set(CLASS_STYLES)
    run_dir = tmp_path / "run"
    run("train", "--task", "shapes", "--data", tmp_path / "shapes", "--run-dir", run_dir, "--model", "cnn-small",
        "--epochs", 2, "--batch-size", 8, "--val-fraction", 0.2)
    run("export", run_dir, "--gate-pp", 100, "--calibration-images", 16, *QUICK_CARD)
    from edgesight.runtime import Classifier

    metadata = Classifier(run_dir / "model.int8.onnx").metadata
    assert metadata.task == "shapes" and metadata.labels == ("round", "triangle")
    assert metadata.preprocess.crop == "full"


def test_bench_compares_every_form_of_the_run_with_its_peers(exported_run, tmp_path):
    run("bench", exported_run, "--repeats", 20, "--warmup", 2, "--batch", 8, "--rounds", 1, "--out", tmp_path)
    report = json.loads((tmp_path / "bench.json").read_text())
    rows = {row["engine"]: row for row in report["rows"]}
    assert set(rows) == {"keras fp32", "onnxruntime fp32", "onnxruntime int8", "litert float", "litert int8", "opencv-dnn fp32"}
    for engine, row in rows.items():
        assert 0 <= row["accuracy"] <= 1, engine
        assert set(row["latency"]) == {"1", str(report["threads"][1])}
        assert 0 < row["latency"]["1"]["median_us"] <= row["latency"]["1"]["p99_us"]
        assert row["throughput_ips"]["1"] > 0 and row["load_ms"] > 0 and row["peak_rss_mib"] > 0 and row["bytes"] > 0
    # Keras and ONNX fp32 are the same weights: same predictions, so the same accuracy.
    assert rows["keras fp32"]["accuracy"] == rows["onnxruntime fp32"]["accuracy"]
    assert {item["threads"] for item in report["against_litert"]} == set(report["threads"])
    int8_against_fp32 = report["int8_against_fp32"]
    assert {item["threads"] for item in int8_against_fp32} == set(report["threads"])
    for item in int8_against_fp32:
        assert item["ratio"] == pytest.approx(rows["onnxruntime fp32"]["latency"][str(item["threads"])]["median_us"] / item["engine_us"])
    assert report["int8_outlook"]["expectation"]
    assert (tmp_path / "bench.md").read_text().startswith("Machine: ")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_writes_ort_format_copies_that_give_the_same_outputs(exported_run):
    from edgesight.runtime import Classifier

    report = json.loads((exported_run / "export_report.json").read_text())["ort_format"]
    assert set(report["files"]) == {"model.ort", "model.int8.ort"}
    batch = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    for name in report["files"]:
        ort_model, onnx_model = Classifier(exported_run / name), Classifier(exported_run / name.replace(".ort", ".onnx"))
        assert ort_model.labels == onnx_model.labels  # the edgesight metadata travels with the file
        np.testing.assert_allclose(ort_model.probabilities(batch), onnx_model.probabilities(batch), atol=1e-5)
    operators = (exported_run / "required_operators.config").read_text()
    assert "QLinearConv" in operators and "model.int8.ort" in operators and "edgesight-ort-" not in operators


def test_export_quantization_choices_are_applied_and_recorded(exported_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(exported_run, run_dir)
    # 40 images come in batches of 20: the Entropy collector fails on a short last batch.
    result = run("export", run_dir, "--gate-pp", 100, "--calibration-images", 40, *QUICK_CARD, "--calibration-method", "Entropy",
                 "--calibration-balance", "random", "--int8-types", "S8S8", "--per-tensor", "--quant-format", "QOperator",
                 "--weight-bits", 8)
    # stdout carries only the result line: the calibrators' and converters' narration goes to stderr
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("fp32 ")
    quantization = json.loads((run_dir / "export_report.json").read_text())["quantization"]
    assert {key: quantization[key] for key in ("calibration_method", "calibration_balance", "activation_type", "per_channel", "format",
                                               "weight_bits")} == {
        "calibration_method": "Entropy", "calibration_balance": "random", "activation_type": "QInt8", "per_channel": False, "format": "QOperator",
        "weight_bits": 8}
    int8 = onnx.load(run_dir / "model.int8.onnx")
    assert any(node.op_type == "QLinearConv" for node in int8.graph.node)
    assert max(np.abs(weights.astype(int)).max() for weights in int8_conv_weights(int8)) > 64
    assert "in 8 bits (exact only on CPUs with int8 dot products)" in (run_dir / "export_report.md").read_text()


def test_export_names_an_unknown_quantization_choice(exported_run):
    result = run("export", exported_run, "--int8-types", "U8U8", expect=2)
    assert "--int8-types must be one of U8S8, S8S8. Received: 'U8U8'" in result.stderr and "Traceback" not in result.stderr
    result = run("export", exported_run, "--weight-bits", 6, expect=2)
    assert "--weight-bits must be 7 or 8. Received: 6" in result.stderr and "Traceback" not in result.stderr
    result = run("export", exported_run, "--card-latency-runs", 10, expect=2)
    assert "--card-latency-runs must be 50 or more. Received: 10" in result.stderr and "Traceback" not in result.stderr


def test_export_refuses_a_locator_option_for_a_classifier_run(exported_run):
    result = run("export", exported_run, "--locator-min-score", 0.2, expect=2)
    assert "is for sign-locator runs only. Received: 0.2" in result.stderr and "(a classifier run)" in result.stderr
    assert "Traceback" not in result.stderr
    for option, value, expected in (("--opset", 3, "--opset must be one of 17, 18, the opsets export is checked with"),
                                    ("--calibration-images", 0, "--calibration-images must be 1 or more. Received: 0")):
        result = run("export", exported_run, option, value, expect=2)
        assert f"{expected}" in result.stderr and "Traceback" not in result.stderr


def test_accuracy_aware_quantization_keeps_the_most_sensitive_nodes_float_one_at_a_time(exported_run, tmp_path):
    from edgesight.export.config import ExportConfig
    from edgesight.export.pipeline import ExportError, export_run

    run_dir = tmp_path / "copy"
    shutil.copytree(exported_run, run_dir)
    # A gate no model can pass: the search runs to its limit and says what it tried.
    with pytest.raises(ExportError, match=r"even with 2 node\(s\) kept float"):
        export_run(ExportConfig(run_dir=str(run_dir), gate_pp=-1.0, calibration_images=40, max_float_nodes=2))
    search = json.loads((run_dir / "export_report.json").read_text())["quantization"]["accuracy_aware"]
    ranking = search["ranking"]
    assert {entry["op_type"] for entry in ranking} <= {"Conv", "Gemm", "Add", "MatMul"} and len(ranking) >= 3
    assert [entry["loss_db"] for entry in ranking] == sorted((entry["loss_db"] for entry in ranking), reverse=True)
    assert [step["kept_float"] for step in search["steps"]] == [[ranking[0]["node"]], [ranking[0]["node"], ranking[1]["node"]]]
    candidate = onnx.load(run_dir / "model.int8.candidate.onnx")
    # A node kept float reads its weights as they are, not through a DequantizeLinear.
    float_convs = {node.name for node in candidate.graph.node if node.op_type in ("Conv", "Gemm")
                   and not node.input[1].endswith("_DequantizeLinear_Output")}
    assert {ranking[0]["node"], ranking[1]["node"]} <= float_convs
    assert isinstance(search["latency_cost_us_1_thread"], float)
    assert "Accuracy-aware quantization: nodes ranked" in (run_dir / "export_report.md").read_text()


def test_background_scenes_train_a_not_a_sign_class_that_export_and_eval_carry(tiny_gtsrb, tmp_path):
    from fakes import write_road_scenes

    scenes = write_road_scenes(tmp_path / "scenes.zip")
    run_dir = tmp_path / "reject"
    run("train", "--data", tiny_gtsrb, "--run-dir", run_dir, "--epochs", 2, "--batch-size", 16, "--val-fraction", 0.34,
        "--background", scenes)
    assert json.loads((run_dir / "config.json").read_text())["labels"][-1] == "not a sign"
    run("export", run_dir, "--gate-pp", 100, "--calibration-images", 40, *QUICK_CARD)
    from edgesight.runtime import Classifier

    assert Classifier(run_dir / "model.int8.onnx").labels[-1] == "not a sign"
    assert "accuracy" in run("eval", run_dir / "model.int8.onnx", "--data", tiny_gtsrb).stdout  # scored on the 43 classes
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert f"--background {scenes}" in card
    assert "--background-locator colour diamonds sign-locator" in card  # by default, the runtime's default locators


def test_a_run_starts_from_an_exported_model_file_as_from_its_run(exported_run, tiny_gtsrb, tmp_path):
    """A model file outlives its run folder: --init-from takes it, with the split and options it was made with."""
    run_dir = tmp_path / "from file"
    run("train", "--data", tiny_gtsrb, "--run-dir", run_dir, "--init-from", exported_run / "model.onnx", "--epochs", 1,
        "--batch-size", 16, "--learning-rate", 1e-4, "--seed", 5)
    saved, source = (json.loads((folder / "config.json").read_text()) for folder in (run_dir, exported_run))
    assert saved["train"]["model"] == source["train"]["model"] and saved["preprocess"] == source["preprocess"]
    # Drawn again with the source's seed and fraction, not this run's seed 5: the tracks the file never trained on.
    assert saved["split"] == source["split"]
    report, source_report = (json.loads((folder / "report.json").read_text()) for folder in (run_dir, exported_run))
    assert report["train_seconds_total"] == pytest.approx(source_report["train_seconds"] + report["train_seconds"], abs=0.2)
    # A gentle epoch from the file's weights keeps their test accuracy (a fresh start would be near chance).
    assert report["test_accuracy"] >= source_report["test_accuracy"] - 0.1

    run("export", run_dir, "--gate-pp", 100, "--calibration-images", 40, *QUICK_CARD)
    card = (run_dir / "MODEL_CARD.md").read_text()
    reproduce = card.split("## Reproduce")[1]
    assert reproduce.index(f"--run-dir '{exported_run}'") < reproduce.index("--init-from")  # the file's own command first

    refused = run("train", "--data", tiny_gtsrb, "--run-dir", tmp_path / "int8", "--init-from", exported_run / "model.int8.onnx",
                  expect=2)
    assert "an int8 file; --init-from and --teacher need the fp32 file it was quantized from (model.onnx beside it" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_zero_epochs_from_a_model_file_restore_a_run_that_export_and_bench_take(exported_run, tiny_gtsrb, tmp_path):
    """A shipped model whose run is gone becomes a run folder again: exported again, it is the same model."""
    restored = tmp_path / "restored"
    run("train", "--data", tiny_gtsrb, "--run-dir", restored, "--init-from", exported_run / "model.onnx", "--epochs", 0)
    report, source_report = (json.loads((folder / "report.json").read_text()) for folder in (restored, exported_run))
    assert report["epochs"] == 0 and report["test_accuracy"] == source_report["test_accuracy"]
    # Scored on the file's own validation tracks, as its run was after its last epoch.
    assert report["final_validation_accuracy"] == pytest.approx(source_report["final_validation_accuracy"], abs=1e-6)
    run("export", restored, "--gate-pp", 100, "--calibration-images", 40, *QUICK_CARD)
    from edgesight.runtime import Classifier

    images = np.random.default_rng(4).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    for name in ("model.onnx", "model.int8.onnx"):
        again, shipped = (Classifier(folder / name).probabilities(images) for folder in (restored, exported_run))
        np.testing.assert_allclose(again, shipped, atol=1e-4 if name == "model.onnx" else 0.02, err_msg=name)
    # bench then takes it as any run (test_bench_compares_every_form_of_the_run_with_its_peers): it has all a run has.
    assert all((restored / name).is_file() for name in ("config.json", "model.keras", "export_report.json"))
    refused = run("train", "--data", tiny_gtsrb, "--run-dir", tmp_path / "none", "--epochs", 0, expect=2)
    assert "epochs 0 only with --init-from" in refused.stderr


def test_a_mirror_averaged_model_reads_an_image_and_its_mirror_image_alike_in_every_file(tmp_path):
    import cv2
    from edgesight.runtime import Classifier
    from fakes import sign_image

    rng = np.random.default_rng(5)
    for class_id, name in {1: "round", 38: "triangle"}.items():
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for index in range(20):
            cv2.imwrite(str(tmp_path / "shapes" / name / f"{index:03d}.png"), cv2.resize(sign_image(class_id, rng)[0], (32, 32)))
    plain, mirrored, restored = (tmp_path / name for name in ("plain", "mirrored", "restored"))
    common = ("--task", "shapes", "--data", tmp_path / "shapes", "--model", "cnn-tiny", "--epochs", 1, "--batch-size", 8,
              "--val-fraction", 0.2)
    run("train", *common, "--run-dir", plain)
    run("train", *common, "--run-dir", mirrored, "--mirror-average")
    run("export", mirrored, "--gate-pp", 100, "--calibration-images", 16, *QUICK_CARD)
    plain_report, report = (json.loads((folder / "report.json").read_text()) for folder in (plain, mirrored))
    assert report["parameters"] == plain_report["parameters"] and report["macs"] == 2 * plain_report["macs"]
    assert "mirror image" in report["architecture"] and "--mirror-average" in (mirrored / "MODEL_CARD.md").read_text()

    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    for name in ("model.onnx", "model.int8.onnx"):
        classifier = Classifier(mirrored / name)
        np.testing.assert_allclose(classifier.probabilities(images), classifier.probabilities(images[:, :, ::-1].copy()),
                                   atol=1e-6 if name == "model.onnx" else 0.02, err_msg=name)
        one = classifier.probabilities(images[:1])  # batch 1 (bound buffers) and a batch agree
        np.testing.assert_allclose(one, classifier.probabilities(images)[:1], atol=1e-5, err_msg=name)
    network = cv2.dnn.readNetFromONNX(str(mirrored / "model.onnx"))  # the peer too runs the mirror average
    network.setInput(images[:1])
    np.testing.assert_allclose(network.forward(), Classifier(mirrored / "model.onnx").probabilities(images[:1]), atol=1e-5)

    # A plain run's weights gain the mirror average as they are; its file is rebuilt with it.
    run("export", plain, "--gate-pp", 100, "--calibration-images", 16, *QUICK_CARD)
    run("train", "--task", "shapes", "--data", tmp_path / "shapes", "--run-dir", restored, "--init-from", plain / "model.onnx",
        "--epochs", 0, "--mirror-average")
    assert json.loads((restored / "report.json").read_text())["macs"] == report["macs"]
    run("train", "--task", "shapes", "--data", tmp_path / "shapes", "--run-dir", tmp_path / "again", "--init-from",
        mirrored / "model.onnx", "--epochs", 0)  # the file's own setting is kept
    assert json.loads((tmp_path / "again" / "report.json").read_text())["macs"] == report["macs"]
    refused = run("train", "--data", tmp_path / "nowhere", "--run-dir", tmp_path / "signs", "--mirror-average", expect=2)
    assert "mirror_average reads the mirror image of each input, which changes the class of a gtsrb sign" in refused.stderr
