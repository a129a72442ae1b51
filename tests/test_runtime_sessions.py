import pytest
from edgesight.runtime.sessions import session_options


@pytest.mark.parametrize("threads", [2, None])
def test_sessions_with_worker_threads_do_not_spin_between_runs(threads):
    # Spinning workers took the cores the sign finder's other sessions and OpenCV needed: 2.4x its time at two threads.
    assert session_options(threads).get_session_config_entry("session.intra_op.allow_spinning") == "0"

