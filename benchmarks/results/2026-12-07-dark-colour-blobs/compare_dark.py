"""compare_sign_finders with a 'colour-dark' locator: the colour locator with V >= 20 in its red and blue ranges."""
import sys
import edgesight.runtime.locate as locate
import edgesight.runtime.learned_locate as learned
sys.path.insert(0, '/work/main/benchmarks')
import compare_sign_finders
DARK = {"red": [((0, 61, 20), (9, 255, 255)), ((166, 61, 20), (179, 255, 255))], "blue": [((96, 91, 20), (129, 255, 255))]}
class DarkColourLocator(locate.ColourLocator):
    def propose(self, frame):
        saved, locate.SIGN_COLOURS = locate.SIGN_COLOURS, DARK
        try:
            return super().propose(frame)
        finally:
            locate.SIGN_COLOURS = saved
learned.CLASSICAL_LOCATORS["colour-dark"] = DarkColourLocator
raise SystemExit(compare_sign_finders.main(sys.argv[1:]))
