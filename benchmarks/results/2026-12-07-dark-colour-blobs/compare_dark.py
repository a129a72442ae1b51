"""compare_sign_finders.py with one more locator, "colour-dark": the colour locator taking red and blue pixels of HSV
value 20 and up instead of 41 and up. The record of a rejected variant (RULE.txt), not a product path.

    python benchmarks/results/2026-12-07-dark-colour-blobs/compare_dark.py --data scenes-100-199.zip \\
        default=gtsrb-locate@colour,diamonds,sign-locator dark=gtsrb-locate@colour-dark,diamonds,sign-locator
"""
import sys
from pathlib import Path

import edgesight.runtime.learned_locate as learned
import edgesight.runtime.locate as locate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/, for compare_sign_finders
import compare_sign_finders  # noqa: E402

DARK = {"red": [((0, 61, 20), (9, 255, 255)), ((166, 61, 20), (179, 255, 255))], "blue": [((96, 91, 20), (129, 255, 255))]}


class DarkColourLocator(locate.ColourLocator):
    def propose(self, frame):
        saved, locate.SIGN_COLOURS = locate.SIGN_COLOURS, DARK
        try:
            return super().propose(frame)
        finally:
            locate.SIGN_COLOURS = saved


learned.CLASSICAL_LOCATORS["colour-dark"] = DarkColourLocator
if __name__ == "__main__":
    raise SystemExit(compare_sign_finders.main(sys.argv[1:]))
