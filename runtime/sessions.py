"""onnxruntime sessions as every edgesight model file (classifier or locator) is opened: one place for the options."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import onnxruntime as ort

from .errors import ModelFileError


def session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # 0 lets onnxruntime use every core; robots often pin this to leave cores for other work.
    options.intra_op_num_threads = 0 if threads is None else threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # onnxruntime's warnings would otherwise go to stderr per load
    if threads != 1:
        # After each run onnxruntime's worker threads spin, waiting for the next, on cores the caller needs for the
        # OpenCV work between runs and for the next session's run: the sign finder (locator, screen, reader) at two
        # threads on two cores took 28-32 ms a held-out road scene spinning, 11.4-13.9 ms not, against 14.8-15.0 ms at
        # one thread; the demo on the sample clip 121-129 against 134-180 frames/s (AMD EPYC, AVX2, 2026-12-07).
        # Only back-to-back runs of one small model gain from spinning (gtsrb-tiny per region 118 against 157-171 us),
        # and one thread serves those better still (124-126 us). Spinning only while a run lasts
        # (session.force_spinning_stop) left the finder at 12.4-15.2 against 10.3-10.6 ms (README, "Threads").
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def bound_run(session: ort.InferenceSession, binding: ort.IOBinding) -> Callable[[], None]:
    """A call that runs `session` on `binding`'s buffers, at the least cost a call can have from Python.

    `InferenceSession.run_with_iobinding` asks onnxruntime on every call whether WebGPU graph capture is on (1.32),
    and without RunOptions its C++ side builds default ones per call: 1.4-1.7 µs of gtsrb-tiny's 41 µs int8 run
    (Intel Xeon 207, 2026-12-07, interleaved). The session's pybind method that it wraps, given RunOptions made once,
    runs the same graph on the same buffers. (RunOptions handed to the wrapper cost ~38 µs more per call instead: it
    looks them up for a graph id, and a missing entry raises inside onnxruntime.) Both private names date from before
    1.17, the oldest onnxruntime edgesight supports.
    """
    run_options = ort.RunOptions()
    try:
        return functools.partial(session._sess.run_with_iobinding, binding._iobinding, run_options)
    except AttributeError:  # an onnxruntime without them: the public call, the same run
        return functools.partial(session.run_with_iobinding, binding)


KERAS_SUFFIXES = (".keras", ".h5")


def open_session(path: Path, threads: int | None, missing: str) -> ort.InferenceSession:
    """A CPU session for the file at `path`, or a ModelFileError naming it (`missing`: what to say when it does not exist)."""
    if not path.is_file():
        raise ModelFileError(f"{path}: {missing}")
    if path.suffix.lower() in KERAS_SUFFIXES:  # onnxruntime would only say its protobuf does not parse
        raise ModelFileError(f"{path}: a Keras file; the runtime reads ONNX files, which `edgesight export {path.parent}` "
                             "writes into that run folder.")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises several pybind classes for the same problem
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(f"{path}: not a loadable ONNX model for onnxruntime {ort.__version__} ({reason[:300]}).") from None
