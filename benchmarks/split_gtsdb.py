"""Split the GTSDB development scenes into parts (by default two halves), each a zip in the GTSDB layout.

The shipped `gtsrb-locate` model learnt its "not a sign" class from scenes 00000-00099
(`edgesight train --background`); its road-scene figures are measured on 00100-00199, which it
never saw (`edgesight eval-frames --data`).

    python benchmarks/split_gtsdb.py ../shared/datasets/gtsdb/GTSDB_dev_scenes.zip OUT_FOLDER
    python benchmarks/split_gtsdb.py ../shared/datasets/gtsdb/GTSDB_dev_scenes.zip OUT_FOLDER --parts 0-149 150-199
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path, PurePosixPath


def scene_range(text: str) -> range:
    """'100-199' -> scenes 100 to 199, both included."""
    try:
        first, last = (int(number) for number in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a part is FIRST-LAST scene numbers, such as 100-199. Received: {text!r}") from None
    if not 0 <= first <= last:
        raise argparse.ArgumentTypeError(f"a part needs 0 <= FIRST <= LAST. Received: {text!r}")
    return range(first, last + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", type=Path, help="GTSDB_dev_scenes.zip")
    parser.add_argument("out", type=Path, help="folder for the parts")
    parser.add_argument("--parts", type=scene_range, nargs="+", default=[range(0, 100), range(100, 200)],
                        help="scene number ranges, one zip each (default: 0-99 100-199)")
    arguments = parser.parse_args()
    source = zipfile.ZipFile(arguments.scenes)
    truth_member = next(name for name in source.namelist() if PurePosixPath(name).name == "gt.txt")
    prefix = truth_member[: -len("gt.txt")]
    truth = source.read(truth_member).decode().splitlines()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for numbers in arguments.parts:
        name = f"gtsdb-scenes-{numbers[0]:03d}-{numbers[-1]:03d}.zip"
        files = {f"{number:05d}.jpg" for number in numbers}
        with zipfile.ZipFile(arguments.out / name, "w") as half:
            for file_name in sorted(files):
                half.writestr(prefix + file_name, source.read(prefix + file_name))
            half.writestr(truth_member, "\n".join(line for line in truth if line.split(";")[0] in files) + "\n")
        print(f"{arguments.out / name}: {len(files)} scenes, {sum(line.split(';')[0] in files for line in truth)} signs")


if __name__ == "__main__":
    main()
