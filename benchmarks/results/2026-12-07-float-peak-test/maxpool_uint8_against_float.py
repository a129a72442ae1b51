"""A 3x3 MaxPool on one 100x170 channel, uint8 against float, one thread, interleaved (onnxruntime CPU).

What onnxruntime did to the int8 locator's peak test before a Max with NOT_A_PEAK stopped it (README.md here):
402 against 24 us on the AVX2-only AMD EPYC.
"""
import numpy as np
import onnxruntime as ort
from edgesight.runtime.bench import interleaved_latency
from edgesight.runtime.sessions import session_options
from onnx import TensorProto, helper

SHAPE = [1, 1, 100, 170]


def max_pool_session(element_type: int) -> ort.InferenceSession:
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    graph = helper.make_graph([pool], "pool", [helper.make_tensor_value_info("x", element_type, SHAPE)],
                              [helper.make_tensor_value_info("y", element_type, SHAPE)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])


def main() -> None:
    values = np.random.default_rng(0).integers(0, 256, SHAPE, np.uint8)
    sessions = {"uint8": (max_pool_session(TensorProto.UINT8), values),
                "float": (max_pool_session(TensorProto.FLOAT), values.astype(np.float32))}
    timers = {name: (lambda session=session, x=x: session.run(None, {"x": x})) for name, (session, x) in sessions.items()}
    for name, figures in interleaved_latency(timers, 200, warmup=5, block=5).items():
        print(f"{name}: {figures['median_us']:.1f} us median")


if __name__ == "__main__":
    main()
