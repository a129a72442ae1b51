"""`edgesight bench`: one trained model in every form it ships in, and in the peers' runtimes, on this machine.

For a training run folder the engines are Keras, onnxruntime fp32 and int8 (the product), LiteRT
float and int8 converted from the same weights, and OpenCV DNN on the fp32 ONNX file. For a bare
ONNX file (or shipped model name) they are onnxruntime and OpenCV DNN.

Each thread setting runs in fresh processes (TensorFlow fixes its thread pools at start), where all
engines are loaded, warmed up and timed interleaved; several such rounds, because a shared host slows
whole stretches of seconds, and slows the faster engine by as many microseconds as the slower one.
Load time and peak memory are measured in one fresh process per engine, so no engine's memory counts
against another's. Only the onnxruntime and OpenCV paths are imported here at module level; TensorFlow
and LiteRT load when a run folder asks.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from edgesight.runtime.bench import (
    OnnxRuntimeEngine,
    OpenCvDnnEngine,
    bench_frame,
    cache_flush_bytes,
    cold_latency,
    interleaved_latency,
    machine_description,
    region_timer,
)
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.cpu import int8_outlook
from edgesight.runtime.datasets import preprocess_regions
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.files import atomic_path, make_folder, write_json_atomic, write_text_atomic
from edgesight.runtime.preprocess import PreprocessSpec
from edgesight.runtime.tasks import get_task, task_of_run, test_set_name

from .config import ExportConfig


@dataclass(frozen=True)
class BenchConfig:
    models: list[str] = field(metadata={"help": "training run folders (Keras, ONNX fp32/int8, LiteRT, OpenCV DNN) "
                                                "or ONNX files / shipped model names (onnxruntime, OpenCV DNN)"})
    data: str | None = field(default=None, metadata={"help": "dataset for accuracy; default: a run's own; "
                                                             "ONNX files are scored only when this is given"})
    limit: int | None = field(default=None, metadata={"help": "score only the first N official test images"})
    repeats: int = field(default=2000, metadata={"help": "timed batch-1 runs per engine, thread setting and round"})
    rounds: int = field(default=3, metadata={"help": "fresh processes per thread setting, each timing every engine "
                                                     "interleaved; figures are medians over the rounds"})
    warmup: int = field(default=200, metadata={"help": "untimed runs per engine first"})
    batch: int = field(default=256, metadata={"help": "batch size for the throughput figure"})
    cold_calls: int = field(default=50, metadata={"help": "timed batch-1 runs per engine, thread setting and round with "
                                                          "the CPU caches flushed before each (0: none)"})
    out: str | None = field(default=None, metadata={"help": "write bench.md, bench.json and bench.png to this folder"})
    skip_bad_images: bool = field(default=False, metadata={"help": "drop test images that do not decode, naming each (a run's own setting wins)"})
    no_peers: bool = field(default=False, metadata={"help": "only the edgesight files (no Keras, LiteRT, OpenCV DNN)"})


@dataclass(frozen=True)
class EngineSpec:
    """What a worker process needs to build one engine: picklable, no loaded state."""

    model: str  # the name the user gave
    kind: str  # onnxruntime | opencv-dnn | keras | litert
    label: str
    path: str
    spec: PreprocessSpec


@dataclass
class Target:
    model: str
    engines: list[EngineSpec]
    weights: str  # the trained weights behind the files: fp32 and int8 files with the same are compared
    test_nhwc: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    dataset: str | None = None


def build_engine(engine: EngineSpec, threads: int):
    if engine.kind == "onnxruntime":
        return OnnxRuntimeEngine(engine.path, threads, engine.label)
    if engine.kind == "opencv-dnn":
        return OpenCvDnnEngine(engine.path, threads, engine.label)
    from .peers import KerasEngine, LiteRtEngine

    if engine.kind == "keras":
        return KerasEngine(Path(engine.path), engine.spec, threads, engine.label)
    return LiteRtEngine(Path(engine.path), engine.spec, threads, engine.label)


def _run_target(folder: Path, config: BenchConfig) -> Target:
    """A training run: its Keras and ONNX files, LiteRT files converted now, its test split."""
    missing = [name for name in ("config.json", "model.keras", "model.onnx", "model.int8.onnx") if not (folder / name).is_file()]
    if missing:
        raise EdgesightError(f"{folder}: {', '.join(missing)} missing; bench needs a trained and exported run "
                             f"(`edgesight train`, then `edgesight export {folder}`).")
    run_config = json.loads((folder / "config.json").read_text())
    spec = PreprocessSpec(**run_config["preprocess"])
    data = config.data or run_config["train"]["data"]
    task = task_of_run(run_config["train"], data)
    name = str(folder)
    engines = [EngineSpec(name, "onnxruntime", "onnxruntime int8", str(folder / "model.int8.onnx"), spec),
               EngineSpec(name, "onnxruntime", "onnxruntime fp32", str(folder / "model.onnx"), spec)]
    if not config.no_peers:
        litert_files = _litert_files(folder, run_config, task, data)
        engines += [EngineSpec(name, "litert", label, str(path), spec) for label, path in litert_files.items()]
        engines += [EngineSpec(name, "keras", "keras fp32", str(folder / "model.keras"), spec),
                    EngineSpec(name, "opencv-dnn", "opencv-dnn fp32", str(folder / "model.onnx"), spec)]
    skip_bad = run_config["train"].get("skip_bad_images", False) or config.skip_bad_images
    return _with_test_split(Target(name, engines, name), task, data, spec, config.limit, skip_bad)


def _litert_files(folder: Path, run_config: dict, task, data: str) -> dict[str, Path]:
    """Convert with the calibration set the ONNX int8 model used (count and seed from its export report)."""
    try:
        from .peers import convert_to_litert
        from .pipeline import calibration_images
    except ImportError as error:
        raise EdgesightError(f"bench of a run folder needs the [bench] extra ({error.name} missing): "
                             "pip install 'edgesight[bench]'") from None
    report_path = folder / "export_report.json"
    quantization = json.loads(report_path.read_text())["quantization"] if report_path.is_file() else {}
    count = quantization.get("calibration_images", ExportConfig.calibration_images)
    seed = quantization.get("calibration_seed", ExportConfig.seed)
    balanced = quantization.get("calibration_balance", ExportConfig.calibration_balance) == "balanced"
    print(f"converting {folder / 'model.keras'} to LiteRT float and int8 ({count} calibration images)", file=sys.stderr)
    calibration = calibration_images(run_config, task, data, count, seed, balanced)
    return convert_to_litert(folder / "model.keras", calibration, folder / "litert")


def _file_target(model: str, config: BenchConfig) -> Target:
    classifier = Classifier(model)
    path, spec = str(classifier.path), classifier.spec
    int8 = bool(classifier.metadata.quantization)
    engines = [EngineSpec(model, "onnxruntime", f"onnxruntime {'int8' if int8 else 'fp32'}", path, spec)]
    if not config.no_peers:
        engines.append(EngineSpec(model, "opencv-dnn", f"opencv-dnn {'int8' if int8 else 'fp32'}", path, spec))
        # Said, not silently left out: a user comparing against LiteRT would otherwise look for its row.
        print(f"{model}: an ONNX file is timed in onnxruntime and OpenCV DNN only; Keras and LiteRT rows need a training "
              f"run folder (LiteRT's converter reads its model.keras). A model file gets one with `edgesight train "
              f"--init-from FP32_FILE --epochs 0 --task TASK --data DATA --run-dir RUN`, then `edgesight export RUN` "
              f"(README, \"Go on training from a model file\").", file=sys.stderr)
    target = Target(model, engines, classifier.metadata.provenance.get("source_sha256", path))
    if config.data is None:
        return target
    task = get_task(classifier.metadata.task, config.data)
    return _with_test_split(target, task, config.data, spec, config.limit, config.skip_bad_images)


def _with_test_split(target: Target, task, data: str, spec: PreprocessSpec, limit: int | None, skip_bad: bool) -> Target:
    regions = task.load(data, "test", skip_bad_images=skip_bad)
    count = len(regions.labels) if limit is None else min(limit, len(regions.labels))
    target.test_nhwc = preprocess_regions(regions.subset(np.arange(count)), spec)
    target.test_labels = regions.labels[:count]
    target.dataset = test_set_name(task, data, count)
    return target


def _accuracy(engine, images_nhwc: np.ndarray, labels: np.ndarray, batch: int) -> float:
    predicted = np.concatenate([np.argmax(engine.predict(images_nhwc[start : start + batch]), axis=1)
                                for start in range(0, len(images_nhwc), batch)])
    return float(np.mean(predicted == labels))


def _throughput(engines: dict, batch: int, rounds: int = 5) -> dict:
    """Images per second at a large batch of random pixels, median of interleaved rounds after one warm-up."""
    rng = np.random.default_rng(0)
    batches = {key: rng.integers(0, 256, (batch, engine.spec.height, engine.spec.width, 3), dtype=np.uint8)
               for key, engine in engines.items()}
    seconds: dict = {key: [] for key in engines}
    for _ in range(rounds + 1):
        for key, engine in engines.items():
            tic = time.perf_counter()
            engine.predict(batches[key])
            seconds[key].append(time.perf_counter() - tic)
    return {key: batch / float(np.median(values[1:])) for key, values in seconds.items()}


def measure_round(engines: list[EngineSpec], threads: int, config: BenchConfig, test_sets: dict) -> dict:
    """In a fresh process: build every engine at this thread count, score, time interleaved, throughput."""
    cv2.setNumThreads(threads or os.cpu_count())  # preprocessing shares the setting
    built, results = {}, {}
    for engine in engines:
        key = (engine.model, engine.label)
        try:
            built[key] = build_engine(engine, threads)
        except (RuntimeError, EdgesightError) as error:
            results[key] = {"error": str(error)[:200]}
        except ImportError as error:  # a peer's package is not installed: that row says so, the others run
            results[key] = {"error": f"{error.name} is not installed (pip install 'edgesight[bench]')"}
    for key, engine in built.items():
        results[key] = {}
        if key[0] in test_sets:
            images, labels = test_sets[key[0]]
            results[key]["accuracy"] = _accuracy(engine, images, labels, config.batch)
    frame_bgr, box = bench_frame()
    timers = {key: region_timer(engine, frame_bgr, box) for key, engine in built.items()}
    latency = interleaved_latency(timers, config.repeats, config.warmup)
    cold = cold_latency(timers, config.cold_calls) if config.cold_calls else {}
    throughput = _throughput(built, config.batch)
    for key in built:
        results[key].update(latency=latency[key], throughput_ips=throughput[key])
        if key in cold:
            results[key]["cold_latency"] = cold[key]
    return results


def _memory_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            return next((int(line.split()[1]) for line in handle if line.startswith(field_name + ":")), None)
    except OSError:
        return None


FRAMEWORK_MODULES = {"onnxruntime": "onnxruntime", "opencv-dnn": "cv2", "keras": "keras", "litert": "ai_edge_litert.interpreter"}


def measure_load(engine: EngineSpec, batch: int) -> dict:
    """In a fresh process: load time, and peak memory over loading and a batch-1 and a large-batch run.

    The framework is imported before the clock starts: load time is the model's, not the library's.
    """
    import importlib

    importlib.import_module(FRAMEWORK_MODULES[engine.kind])
    resident_before = _memory_kib("VmRSS")
    tic = time.perf_counter()
    built = build_engine(engine, 0)
    load_ms = (time.perf_counter() - tic) * 1000
    shape = (engine.spec.height, engine.spec.width, 3)
    built.predict(np.zeros((1, *shape), np.uint8))
    built.predict(np.zeros((batch, *shape), np.uint8))
    peak = _memory_kib("VmHWM")
    if peak is None or resident_before is None:
        return {"load_ms": load_ms}
    return {"load_ms": load_ms, "peak_rss_mib": peak / 1024, "model_rss_mib": (peak - resident_before) / 1024}


def _in_fresh_process(function, *arguments):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, arguments)


def _time_in_rounds(engines: list[EngineSpec], rows: dict, test_sets: dict, config: BenchConfig,
                    thread_settings: tuple) -> None:
    """Fill each row's latency and throughput per thread setting from `config.rounds` fresh-process rounds, and
    its accuracy from the first round at all threads."""
    by_round: dict = {}
    for threads in thread_settings:
        for round_index in range(config.rounds):
            print(f"timing {len(engines)} engines interleaved, {threads} thread(s), round {round_index + 1} of "
                  f"{config.rounds}", file=sys.stderr)
            scored = test_sets if threads == os.cpu_count() and round_index == 0 else {}
            for key, result in _in_fresh_process(measure_round, engines, threads, config, scored).items():
                if "error" in result:
                    rows[key]["error"] = result["error"]
                    continue
                if "accuracy" in result:
                    rows[key]["accuracy"] = result["accuracy"]
                by_round.setdefault(key, {}).setdefault(str(threads), []).append(result)
    for key, settings in by_round.items():
        if "error" not in rows[key]:
            rows[key]["latency"] = {threads: over_rounds([r["latency"] for r in results]) for threads, results in settings.items()}
            if config.cold_calls:
                rows[key]["cold_latency"] = {threads: over_rounds([r["cold_latency"] for r in results], tail="p90_us")
                                             for threads, results in settings.items()}
            rows[key]["throughput_ips"] = {threads: float(np.median([r["throughput_ips"] for r in results]))
                                           for threads, results in settings.items()}


def bench(config: BenchConfig) -> list[dict]:
    """Measure every engine of every model; print the table and write it where `out` says."""
    for name in ("repeats", "rounds", "batch", "limit"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1. Received: {name}={getattr(config, name)}")
    for name in ("warmup", "cold_calls"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be at least 0. Received: {name}={getattr(config, name)}")
    targets = [_run_target(Path(model), config) if Path(model).is_dir() else _file_target(model, config)
               for model in config.models]
    engines = [engine for target in targets for engine in target.engines]
    test_sets = {t.model: (t.test_nhwc, t.test_labels) for t in targets if t.test_nhwc is not None}
    rows = {(e.model, e.label): {"model": e.model, "engine": e.label, "file": e.path, "bytes": os.path.getsize(e.path),
                                 "dataset": target.dataset, "weights": target.weights}
            for target in targets for e in target.engines}
    thread_settings = (1, os.cpu_count())
    _time_in_rounds(engines, rows, test_sets, config, thread_settings)
    for engine in engines:
        row = rows[(engine.model, engine.label)]
        if "error" not in row:
            print(f"load time and memory: {engine.label}", file=sys.stderr)
            row.update(_in_fresh_process(measure_load, engine, config.batch))
    results = list(rows.values())
    report = {"machine": machine_description(), "int8_outlook": int8_outlook().to_json(), "threads": list(thread_settings),
              "batch": config.batch, "repeats": config.repeats, "warmup": config.warmup, "rounds": config.rounds,
              "rows": results,
              "cold_calls": config.cold_calls, "flush_bytes": cache_flush_bytes(),
              "against_litert": latency_ratios(results, "onnxruntime int8", "litert int8"),
              "against_litert_cold": latency_ratios(results, "onnxruntime int8", "litert int8", "cold_latency"),
              "int8_against_fp32": latency_ratios(results, "onnxruntime int8", "onnxruntime fp32")}
    table = format_table(report)
    print(table)
    if config.out:
        out = Path(config.out)
        make_folder(out, f"--out {out}")
        write_json_atomic(out / "bench.json", report)
        write_text_atomic(out / "bench.md", table + "\n")
        plot_accuracy_latency(report, out / "bench.png")
    return results


def over_rounds(rounds: list[dict], tail: str = "p99_us") -> dict:
    """One engine's latency at one thread setting from its rounds: the median of their medians and of their `tail`
    percentiles, each round's median kept for the paired ratios."""
    return {"runs": sum(stats["runs"] for stats in rounds),
            "median_us": float(np.median([stats["median_us"] for stats in rounds])),
            tail: float(np.median([stats[tail] for stats in rounds])),
            "round_medians_us": [stats["median_us"] for stats in rounds]}


def latency_ratios(rows: list[dict], engine: str, reference: str, figure: str = "latency") -> list[dict]:
    """How many times as fast `engine` is as `reference` on the same trained weights, at each thread setting: the
    median over rounds of the ratio of their median per-region latencies (`figure`: warm, or "cold_latency") within a
    round, with the rounds' range. Within a round the two ran interleaved in one process, so a round the host slowed
    compares them fairly still."""
    by_key = {(row["weights"], row["engine"]): row for row in rows if figure in row}
    found = []
    for (weights, label), ours in by_key.items():
        other = by_key.get((weights, reference))
        if label != engine or other is None:
            continue
        for threads, stats in ours[figure].items():
            theirs = other[figure][threads]
            paired = [reference_us / engine_us
                      for engine_us, reference_us in zip(stats["round_medians_us"], theirs["round_medians_us"], strict=True)]
            found.append({"model": ours["model"], "threads": int(threads), "engine": engine, "reference": reference,
                          "engine_us": stats["median_us"], "reference_us": theirs["median_us"],
                          "ratio": float(np.median(paired)), "round_ratios": paired})
    return found


def _int8_verdict(ratio: float) -> str:
    # Below 1.1x the int8 file's lower accuracy buys too little time to be worth it.
    return "int8 pays off here" if ratio >= 1.1 else "int8 does not pay off here: use the fp32 file for speed"


def display_name(model: str) -> str:
    """A run folder or file by its last path part; a shipped model by its name."""
    return Path(model).name or model


def _round_range(item: dict) -> str:
    ratios = item["round_ratios"]
    return "" if len(ratios) < 2 else f" ({min(ratios):.2f}–{max(ratios):.2f}× in {len(ratios)} rounds)"


def _figure(value, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def format_table(report: dict) -> str:
    one, many = (str(t) for t in report["threads"])
    lines = [
        f"Machine: {report['machine']}.",
        f"Latency: one region (96×96 px) of a 640×480 frame (crop, resize, inference, top-1), batch 1, "
        f"median and p99 of {report['repeats']} interleaved runs after {report['warmup']} warm-up runs, "
        f"each the median over {report['rounds']} round(s) in fresh processes. "
        + (f"Cold: the median of {report['cold_calls']} such runs, each right after a {report['flush_bytes'] >> 20} MiB copy that "
           "flushes the CPU caches, as other work between a camera loop's classifications can at worst. "
           if report.get("cold_calls") else "")
        + f"Throughput: batch {report['batch']}, {many} threads.", "",
        f"| model | engine | top-1 | size KiB | load ms | peak RSS MiB (model) | µs p50 / p99, {one} thread "
        f"| µs cold, {one} thread | µs p50 / p99, {many} threads | images/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        head = f"| {display_name(row['model'])} | {row['engine']} |"
        if "error" in row:
            lines.append(f"{head} cannot run: {row['error']} | {row['bytes'] / 1024:.0f} | | | | | | |")
            continue
        latency = row["latency"]
        memory = "—" if "peak_rss_mib" not in row else f"{row['peak_rss_mib']:.0f} ({row['model_rss_mib']:.1f})"
        lines.append(
            f"{head} {_figure(row.get('accuracy'), '{:.2%}')} | {row['bytes'] / 1024:.0f} | {row['load_ms']:.1f} | {memory} | "
            f"{latency[one]['median_us']:.1f} / {latency[one]['p99_us']:.1f} | "
            f"{_figure(row.get('cold_latency', {}).get(one, {}).get('median_us'), '{:.1f}')} | "
            f"{latency[many]['median_us']:.1f} / {latency[many]['p99_us']:.1f} | {row['throughput_ips'][many]:,.0f} |")
    datasets = sorted({row["dataset"] for row in report["rows"] if row.get("dataset")})
    if datasets:
        lines += ["", "Top-1 on: " + "; ".join(datasets) + "."]
    for item in report["against_litert"]:
        lines.append(f"- {display_name(item['model'])}, {item['threads']} thread(s): onnxruntime int8 {item['engine_us']:.1f} µs, "
                     f"LiteRT int8 {item['reference_us']:.1f} µs per region: onnxruntime is {item['ratio']:.2f}× as fast"
                     f"{_round_range(item)}.")
    for item in report.get("against_litert_cold", []):
        lines.append(f"- {display_name(item['model'])}, {item['threads']} thread(s), cold: onnxruntime int8 "
                     f"{item['engine_us']:.1f} µs, LiteRT int8 {item['reference_us']:.1f} µs: onnxruntime is "
                     f"{item['ratio']:.2f}× as fast{_round_range(item)}.")
    outlook = report["int8_outlook"]
    lines += ["", f"int8 on this CPU ({outlook['machine']}): {outlook['expectation']}."]
    for item in report["int8_against_fp32"]:
        lines.append(f"- {display_name(item['model'])}, {item['threads']} thread(s): onnxruntime int8 {item['engine_us']:.1f} µs, "
                     f"fp32 {item['reference_us']:.1f} µs per region: {item['ratio']:.2f}× as fast{_round_range(item)}; "
                     f"{_int8_verdict(item['ratio'])}.")
    return "\n".join(lines)


def plot_accuracy_latency(report: dict, path: Path) -> None:
    """Accuracy against one-thread median latency, one point per engine."""
    rows = [row for row in report["rows"] if "accuracy" in row and "latency" in row]
    if not rows:
        print(f"{path}: not drawn, no engine was scored on a dataset (give --data)", file=sys.stderr)
        return
    try:
        import matplotlib
    except ImportError:
        print(f"{path}: not drawn, matplotlib is not installed (pip install 'edgesight[bench]')", file=sys.stderr)
        return
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import NullFormatter

    one = str(report["threads"][0])
    models = list(dict.fromkeys(row["model"] for row in rows))
    engines = list(dict.fromkeys(row["engine"] for row in rows))
    colours = {engine: pyplot.get_cmap("tab10")(index % 10) for index, engine in enumerate(engines)}
    # One panel per model: accuracies of different tasks do not share a scale.
    figure, panels = pyplot.subplots(1, len(models), figsize=(4.2 * len(models), 4), squeeze=False)
    for panel, model in zip(panels[0], models):
        for row in (row for row in rows if row["model"] == model):
            panel.scatter(row["latency"][one]["median_us"], row["accuracy"] * 100, color=colours[row["engine"]], s=40,
                          label=row["engine"])
        panel.set_xscale("log")
        panel.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a log axis overprint each other
        panel.set_title(display_name(model), fontsize=10)
        panel.set_xlabel(f"median µs per region, {one} thread (log)")
        panel.grid(True, which="both", alpha=0.3)
    panels[0][0].set_ylabel("top-1 accuracy, %")
    handles = [pyplot.Line2D([], [], marker="o", linestyle="", color=colours[engine], label=engine) for engine in engines]
    figure.legend(handles=handles, loc="lower center", ncol=min(6, len(engines)), fontsize=8, frameon=False)
    figure.suptitle(report["machine"], fontsize=9)
    figure.tight_layout(rect=(0, 0.08, 1, 0.95))
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    pyplot.close(figure)
