"""Probe: cheaper ways to standardize a uint8 image and quantize it, same outputs?"""
import numpy as np
import onnxruntime as ort
from edgesight.runtime.bench import interleaved_latency
from edgesight.runtime.sessions import session_options
from onnx import TensorProto as T
from onnx import helper, numpy_helper

EPS = 65.0250015258789
S, Z = np.float32(0.04527342), np.uint8(83)

def model(nodes, inits, out_shape=None):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.UINT8, [1, 32, 32, 3])],
                          [helper.make_tensor_value_info("q", T.UINT8, None)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

qp = [numpy_helper.from_array(np.array(S), "s"), numpy_helper.from_array(np.array(Z), "z")]
A = model([helper.make_node("Cast", ["x"], ["f"], to=1),
           helper.make_node("LayerNormalization", ["f", "one"], ["n"], axis=1, epsilon=EPS),
           helper.make_node("QuantizeLinear", ["n", "s", "z"], ["q"])],
          qp + [numpy_helper.from_array(np.ones((32, 32, 3), np.float32), "one")])
B = model([helper.make_node("Cast", ["x"], ["f"], to=1),
           helper.make_node("Reshape", ["f", "shape"], ["r"]),
           helper.make_node("InstanceNormalization", ["r", "one1", "zero1"], ["n"], epsilon=EPS),
           helper.make_node("QuantizeLinear", ["n", "s", "z"], ["q"])],
          qp + [numpy_helper.from_array(np.array([1, 1, 3072], np.int64), "shape"),
                numpy_helper.from_array(np.ones(1, np.float32), "one1"), numpy_helper.from_array(np.zeros(1, np.float32), "zero1")])
# C: LN over a (1, 3072) view: one row of 3072, unit scale of 3072
C = model([helper.make_node("Cast", ["x"], ["f"], to=1),
           helper.make_node("Reshape", ["f", "shape"], ["r"]),
           helper.make_node("LayerNormalization", ["r", "one"], ["n"], axis=-1, epsilon=EPS),
           helper.make_node("QuantizeLinear", ["n", "s", "z"], ["q"])],
          qp + [numpy_helper.from_array(np.array([1, 3072], np.int64), "shape"), numpy_helper.from_array(np.ones(3072, np.float32), "one")])
CAST = model([helper.make_node("Cast", ["x"], ["f"], to=1), helper.make_node("QuantizeLinear", ["f", "s", "z"], ["q"])], qp)
IDENT = model([helper.make_node("Identity", ["x"], ["q"])], [])
rng = np.random.default_rng(0)
images = [rng.integers(0, 256, (1, 32, 32, 3), np.uint8) for _ in range(50)] + [np.full((1, 32, 32, 3), 7, np.uint8)]
timers, outs = {}, {}
for name, m in {"A cast+LN+Q": A, "B instnorm": B, "C LN row": C, "cast+Q only": CAST, "identity": IDENT}.items():
    s = ort.InferenceSession(m.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])
    outs[name] = [s.run(None, {"x": im})[0].reshape(-1) for im in images]
    b = s.io_binding()
    b.bind_cpu_input("x", images[0])
    b.bind_output("q")
    timers[name] = lambda s=s, b=b: s.run_with_iobinding(b)
for name in outs:
    diffs = [int(np.abs(o.astype(int) - a.astype(int)).max()) for o, a in zip(outs[name], outs["A cast+LN+Q"])]
    print(name, "max diff vs A", max(diffs), "images differing", sum(d > 0 for d in diffs))
for k, v in interleaved_latency(timers, 6000, warmup=500).items():
    print(f"{k:20s} {v['median_us']:.2f}")
