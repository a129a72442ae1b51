"""A robot's view of edgesight: react to the signs a camera sees, in your own Python loop.

    python examples/robot_stream.py                                  # camera 0, the shipped GTSRB int8 model
    python examples/robot_stream.py 0 --camera-size 1280x720         # camera 0 asked for 1280x720 frames
    python examples/robot_stream.py samples/gtsdb_drive.mp4 --locate # every sign in each frame of the sample clip

Each result is one classified frame, or a change of the camera's state while no frame comes
("reconnecting", "connected"). A camera gone for longer than --lost-after seconds ends the loop with
SourceError. Ctrl-C ends it cleanly; the camera is released when the loop is left, however it is left.
"""
from __future__ import annotations

import argparse

from edgesight.runtime import CameraSettings, SourceError
from edgesight.runtime.stream import StreamOptions, stream


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", nargs="?", default="0", help="camera index, /dev/video*, stream URL, video file, folder or glob")
    parser.add_argument("--model", default=None, help="model file or shipped name (default: gtsrb, or gtsrb-locate with --locate)")
    parser.add_argument("--locate", action="store_true", help="find every sign in the frame instead of reading the centre box")
    parser.add_argument("--lost-after", type=float, default=30.0, help="seconds without a frame before giving up")
    parser.add_argument("--camera-size", help="WIDTHxHEIGHT to ask a camera for (default: its driver's)")
    arguments = parser.parse_args()
    model = arguments.model or ("gtsrb-locate" if arguments.locate else "gtsrb")
    try:
        camera = CameraSettings.parse(arguments.camera_size)
    except ValueError as error:
        parser.error(str(error))
    try:
        for result in stream(model, arguments.source, StreamOptions(locate=arguments.locate), threads=1,
                             lost_after_s=arguments.lost_after, camera=camera):
            if result.frame is None:
                print(f"camera {result.source_state}")  # e.g. slow down the robot while blind
                continue
            for box, predictions in result.detections:
                best = predictions[0]
                if best.score >= 0.9:  # act only on confident readings
                    print(f"frame {result.frame.index}: {best.label} ({best.score:.2f}) at {box}, "
                          f"{result.end_to_end_ms:.1f} ms after capture")
    except SourceError as error:
        print(f"stopped: {error}")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
