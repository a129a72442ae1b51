"""Sign finders side by side on road scenes: signs found, false detections per frame and time per frame, in one process.

A finder is a sign model with its locators, as `edgesight eval-frames` runs them (one thread, min score 0.9).
Each finder after the first is also compared with the first sign by sign: the signs only it finds, those only the
first finds, and the exact two-sided sign test (McNemar's) on those two counts. On a hundred scenes, "111 against
109" may be +5 and -3, which chance makes easily; the p-value says how easily.
This host's speed moves by a quarter from one hour to the next, so finders are timed interleaved, frame by frame,
and a time means something only next to the others of the same run. Every finder is scored on the same scenes.

A finder is NAME=MODEL@LOCATORS[@CENTRE_SCORE][@gate=COLOUR_GATE][@screen=MODEL[:THRESHOLD]][@roi=L,T,R,B][@width=SEARCH_WIDTH]: LOCATORS as for
--locator, comma-separated (colour, diamonds, sign-locator, locator files); CENTRE_SCORE replaces the operating point
stamped in the learned locator files; COLOUR_GATE replaces --colour-gate's default (0: every colour box is classified);
MODEL is --screen's (auto by default, as eval-frames: the shipped gtsrb-screen in front of gtsrb-locate; none; a model
file), reading every box first and dropping those it takes for "not a sign" with at least THRESHOLD (`SignFinder`); roi
is --roi's region, where the locators search (the whole frame by default); width is --search-width's, the width frames
wider than it are shrunk to for the locators (none by default).

    python benchmarks/compare_sign_finders.py --data scenes-100-199.zip \\
        shipped=gtsrb-locate@colour,sign-locator new=runs/locate/model.int8.onnx@colour,runs/locator/locator.onnx@0.2 \\
        --out benchmarks/results/DATE-sign-finders
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
from edgesight.runtime.bench import machine_description
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.frame_eval import EvalFramesConfig, score_scenes
from edgesight.runtime.learned_locate import COLOUR_GATE, open_locator
from edgesight.runtime.roi import RegionOfInterest, as_searched, check_search_width
from edgesight.runtime.scenes import read_scenes
from edgesight.runtime.signs import SCREEN_THRESHOLD, SignFinder, open_screen


@dataclass(frozen=True)
class FinderSpec:
    """A finder as the command line names it (module docstring)."""

    name: str
    model: str
    locators: list[str]
    centre_score: float | None = None
    colour_gate: float = COLOUR_GATE
    screen: str = "auto"
    screen_threshold: float = SCREEN_THRESHOLD
    roi: str | None = None
    search_width: int | None = None

    def finder(self) -> SignFinder:
        classifier = Classifier(self.model, threads=1, max_batch=256)
        return SignFinder(classifier,
                          locator=as_searched(open_locator(self.locators, threads=1, min_score=self.centre_score,
                                                           colour_gate=self.colour_gate), self.roi, self.search_width),
                          screen=open_screen(self.screen, classifier), screen_threshold=self.screen_threshold)

    def locators_text(self) -> str:
        return (", ".join(self.locators) + (f" @ {self.centre_score}" if self.centre_score is not None else "")
                + (f", colour gate {self.colour_gate}" if self.colour_gate != COLOUR_GATE else "")
                + (f", screen {self.screen}" if self.screen != "auto" else "")
                + (f" at {self.screen_threshold}" if self.screen_threshold != SCREEN_THRESHOLD else "")
                + (f", roi {self.roi}" if self.roi is not None else "")
                + (f", search width {self.search_width}" if self.search_width is not None else ""))


def parse_finder(spec: str) -> FinderSpec:
    """'NAME=MODEL@LOCATORS[@CENTRE_SCORE][@gate=COLOUR_GATE][@screen=MODEL[:THRESHOLD]][@roi=L,T,R,B][@width=SEARCH_WIDTH]' -> FinderSpec."""
    name, _, rest = spec.partition("=")
    model, _, rest = rest.partition("@")
    locators, *options = rest.split("@")
    usage = (f"a finder is NAME=MODEL@LOCATORS[@CENTRE_SCORE][@gate=COLOUR_GATE][@screen=MODEL[:THRESHOLD]][@roi=L,T,R,B][@width=SEARCH_WIDTH], such as "
             f"shipped=gtsrb-locate@colour,sign-locator. Received: {spec!r}")
    if not name or not model or not locators or len(options) > 5:
        raise argparse.ArgumentTypeError(usage)
    values: dict = {}
    for option in options:
        key, _, value = option.partition("=") if "=" in option else ("", "", option)
        if {"screen": "screen", "gate": "colour_gate", "roi": "roi", "width": "search_width", "": "centre_score"}.get(key) in values:
            raise argparse.ArgumentTypeError(usage)  # each option once
        if key == "screen" and value:
            screen, _, threshold = value.partition(":")
            values["screen"] = screen
            if threshold:
                values["screen_threshold"] = _number(threshold, 0, 1, True, spec, above_low=True)
        elif key == "roi":
            try:
                RegionOfInterest.parse(value)
            except ValueError as error:
                raise argparse.ArgumentTypeError(f"{error} in {spec!r}") from None
            values["roi"] = value
        elif key == "width":
            try:
                values["search_width"] = int(value)
                check_search_width(values["search_width"])
            except ValueError as error:
                raise argparse.ArgumentTypeError(f"{error} in {spec!r}") from None
        elif key == "gate":
            values["colour_gate"] = _number(value, 0, 1, False, spec)
        elif not key:
            values["centre_score"] = _number(value, 0, 1, False, spec, above_low=True)
        else:
            raise argparse.ArgumentTypeError(usage)
    return FinderSpec(name, model, locators.split(","), **values)


def _number(text: str, low: float, high: float, high_included: bool, spec: str, above_low: bool = False) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not ((low < number if above_low else low <= number) and (number <= high if high_included else number < high)):
        raise argparse.ArgumentTypeError(f"CENTRE_SCORE must be in (0, 1), COLOUR_GATE in [0, 1) and THRESHOLD in (0, 1]. "
                                         f"Received: {text!r} in {spec!r}")
    return number


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided p-value of `wins` against `losses` if each discordant sign went either way with even odds."""
    pairs = wins + losses
    if not pairs:
        return 1.0
    tail = sum(math.comb(pairs, k) for k in range(min(wins, losses) + 1)) / 2 ** pairs
    return min(1.0, 2 * tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="road scenes in the GTSDB layout (folder or .zip with gt.txt)")
    parser.add_argument("finders", nargs="+", type=parse_finder,
                        help="NAME=MODEL@LOCATORS[@CENTRE_SCORE][@gate=COLOUR_GATE][@screen=MODEL[:THRESHOLD]][@roi=L,T,R,B][@width=SEARCH_WIDTH]")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the scenes (default: 3)")
    parser.add_argument("--out", type=Path, help="folder for results.md and results.json")
    args = parser.parse_args(argv)

    names = [finder.name for finder in args.finders]
    if len(set(names)) < len(names):
        parser.error(f"each finder needs a name of its own. Received: {', '.join(names)}")
    cv2.setNumThreads(1)  # the goal is for one core; OpenCV would otherwise use every core
    finders = {spec.name: spec.finder() for spec in args.finders}
    rows, found_by_first = [], None
    for spec in args.finders:
        finder = finders[spec.name]
        tally = score_scenes(EvalFramesConfig(model=spec.model, data=args.data, examples=0), finder.classifier, finder)
        row = {"finder": spec.name, "model": spec.model, "locators": spec.locators, "centre_score": spec.centre_score,
               "colour_gate": spec.colour_gate, "screen": spec.screen, "screen_threshold": spec.screen_threshold,
               "locators_text": spec.locators_text(), "signs_24px_and_more": tally.goal["signs"], "found": tally.goal["found"],
               "false_detections_per_frame": round(tally.false_detections / tally.frames, 4)}
        if found_by_first is None:
            found_by_first = tally.found_goal_signs
        else:
            wins, losses = len(tally.found_goal_signs - found_by_first), len(found_by_first - tally.found_goal_signs)
            row |= {"found_only_here": wins, "found_only_by_first": losses, "sign_test_p": round(sign_test_p(wins, losses), 4)}
        rows.append(row)
    scenes = list(read_scenes(args.data))
    milliseconds = {name: [] for name in finders}
    for _ in range(args.rounds):
        for scene in scenes:
            for name, finder in finders.items():
                started = time.perf_counter()
                finder.find(scene.image_bgr)
                milliseconds[name].append((time.perf_counter() - started) * 1000)
    first = statistics.median(milliseconds[rows[0]["finder"]])
    for row in rows:
        row["ms_per_frame_median"] = round(statistics.median(milliseconds[row["finder"]]), 2)
        row["time_against_first"] = round(row["ms_per_frame_median"] / first, 3)

    lines = [f"{len(scenes)} scenes of `{args.data}`; {machine_description()}; one thread; median of "
             f"{args.rounds * len(scenes)} interleaved frames each.", "",
             "| finder | model | locators | found (≥ 24 px) | against the first: signs gained, lost (sign test p) "
             "| false per frame | ms per frame | time against the first |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        locators = row["locators_text"]
        paired = (f"+{row['found_only_here']}, -{row['found_only_by_first']} (p = {row['sign_test_p']:.2f})"
                  if "sign_test_p" in row else "")
        lines.append(f"| {row['finder']} | {row['model']} | {locators} | {row['found']} of {row['signs_24px_and_more']} | "
                     f"{paired} | {row['false_detections_per_frame']:.2f} | {row['ms_per_frame_median']:.2f} | "
                     f"{row['time_against_first']:.3f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "results.md", table)
        write_json_atomic(args.out / "results.json", {"data": str(args.data), "machine": machine_description(),
                                                       "rounds": args.rounds, "finders": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
