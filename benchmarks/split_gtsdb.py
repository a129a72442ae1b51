"""Split the GTSDB development scenes into two halves, each a zip in the GTSDB layout.

The shipped `gtsrb-locate` model learnt its "not a sign" class from scenes 00000-00099
(`edgesight train --background`); its road-scene figures are measured on 00100-00199, which it
never saw (`edgesight eval-frames --data`).

    python benchmarks/split_gtsdb.py ../shared/datasets/gtsdb/GTSDB_dev_scenes.zip OUT_FOLDER
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path, PurePosixPath

HALVES = {"gtsdb-scenes-000-099.zip": range(0, 100), "gtsdb-scenes-100-199.zip": range(100, 200)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", type=Path, help="GTSDB_dev_scenes.zip")
    parser.add_argument("out", type=Path, help="folder for the two halves")
    arguments = parser.parse_args()
    source = zipfile.ZipFile(arguments.scenes)
    truth_member = next(name for name in source.namelist() if PurePosixPath(name).name == "gt.txt")
    prefix = truth_member[: -len("gt.txt")]
    truth = source.read(truth_member).decode().splitlines()
    arguments.out.mkdir(parents=True, exist_ok=True)
    for name, numbers in HALVES.items():
        files = {f"{number:05d}.jpg" for number in numbers}
        with zipfile.ZipFile(arguments.out / name, "w") as half:
            for file_name in sorted(files):
                half.writestr(prefix + file_name, source.read(prefix + file_name))
            half.writestr(truth_member, "\n".join(line for line in truth if line.split(";")[0] in files) + "\n")
        print(f"{arguments.out / name}: {len(files)} scenes, {sum(line.split(';')[0] in files for line in truth)} signs")


if __name__ == "__main__":
    main()
