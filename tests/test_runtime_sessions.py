import pytest
from edgesight.runtime.sessions import session_options


@pytest.mark.parametrize("threads", [2, None])
def test_sessions_with_worker_threads_do_not_spin_between_runs(threads):
    # Spinning workers took the cores the sign finder's other sessions and OpenCV needed: 2.4x its time at two threads.
    assert session_options(threads).get_session_config_entry("session.intra_op.allow_spinning") == "0"



def test_a_bound_run_writes_what_a_plain_run_returns_with_or_without_onnxruntime_s_private_names(tiny_model):
    import types

    import numpy as np
    import onnxruntime as ort
    from edgesight.runtime.sessions import bound_run

    session = ort.InferenceSession(str(tiny_model), session_options(1), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(5).integers(0, 256, (1, *session.get_inputs()[0].shape[1:]), dtype=np.uint8)
    expected = session.run(None, {session.get_inputs()[0].name: image})[0]
    binding = session.io_binding()
    binding.bind_cpu_input(session.get_inputs()[0].name, image)
    scores = np.zeros_like(expected)
    binding.bind_output(session.get_outputs()[0].name, "cpu", 0, np.float32, list(scores.shape), scores.ctypes.data)
    # The second: a session object without `_sess`, as a later onnxruntime might hand out; the public call serves.
    public_only = types.SimpleNamespace(run_with_iobinding=session.run_with_iobinding)
    for owner in (session, public_only):
        scores[...] = 0
        bound_run(owner, binding)()
        np.testing.assert_array_equal(scores, expected)
