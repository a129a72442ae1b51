import numpy as np, cv2, onnx, onnxruntime as ort
from edgesight.runtime.bench import bench_frame, cold_latency, region_timer, OnnxRuntimeEngine
from edgesight.runtime.preprocess import crop_region
from edgesight.runtime.sessions import session_options
from edgesight.export.peers import LiteRtEngine
cv2.setNumThreads(1)
run='/root/edgesight-runs/gtsrb-tiny-restored'
ours = OnnxRuntimeEngine(run+'/model.int8.onnx', 1); c = ours.classifier
lit = LiteRtEngine(run+'/litert/model.int8.tflite', ours.spec, 1, 'l')
frame, box = bench_frame()
img = crop_region(frame, c.spec, box)[None]
ident = onnx.helper.make_model(onnx.helper.make_graph([onnx.helper.make_node("Identity", ["image"], ["copy"])], "i",
        [onnx.helper.make_tensor_value_info("image", onnx.TensorProto.UINT8, [1,32,32,3])], [onnx.helper.make_tensor_value_info("copy", onnx.TensorProto.UINT8, [1,32,32,3])]), opset_imports=[onnx.helper.make_opsetid("", 17)])
s = ort.InferenceSession(ident.SerializeToString(), session_options(1), providers=['CPUExecutionProvider'])
b = s.io_binding(); b.bind_cpu_input('image', img); b.bind_output('copy')
interp, ii, oi = lit._interpreter(1)
def lite_inf():
    interp.set_tensor(ii, img); interp.invoke(); return interp.get_tensor(oi)
timers = {'ort whole path': region_timer(ours, frame, box), 'litert whole path': region_timer(lit, frame, box),
          'crop_region': lambda: crop_region(frame, c.spec, box), 'ort run only': lambda: c.session.run_with_iobinding(c._single_binding),
          'litert set/invoke/get': lite_inf, 'ort identity run': lambda: s.run_with_iobinding(b), 'top-1': lambda: c.top_k(c._single_output, 1)}
for k, v in cold_latency(timers, 60).items(): print(f"{k:24s} cold p50 {v['median_us']:7.1f}  p90 {v['p90_us']:7.1f}")
