"""tests/pylib/checks.py: the failure list and the two checks that the
Python scenario tests share (tests/serve, tests/cli). A check records a
failure and lets the test go on, so one run reports every difference;
the test exits non-zero at the end if FAILURES is not empty.

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pylib"))
    from checks import FAILURES, check, check_true
"""

FAILURES = []


def check(what, got, want):
    """Records a failure unless got == want (both printed)."""
    if got != want:
        FAILURES.append(f"{what}: got {got!r}, want {want!r}")


def check_true(what, ok, detail=""):
    """Records a failure (with detail) unless ok."""
    if not ok:
        FAILURES.append(f"{what}: {detail}")
