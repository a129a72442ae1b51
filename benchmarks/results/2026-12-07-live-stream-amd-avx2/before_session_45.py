"""benchmarks/live_stream.py with the demo's threads as they were before 2026-12-07 (session 45): onnxruntime's workers
spinning between runs, and the locators run one after another. For the record of what the change gained; run from the
repository's root: python benchmarks/results/2026-12-07-live-stream-amd-avx2/before_session_45.py --scenes ... --out ..."""
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/, for live_stream

import edgesight.runtime.stream as stream
import live_stream
from edgesight.runtime import sessions
from edgesight.runtime.learned_locate import open_locator

shipped_options = sessions.session_options


def spinning_options(threads):
    options = shipped_options(threads)
    if threads != 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return options


if __name__ == "__main__":  # not in the camera's process, which spawn starts from this file
    sessions.session_options = spinning_options
    stream.open_locator = functools.partial(open_locator, overlap=False)
    raise SystemExit(live_stream.main())
