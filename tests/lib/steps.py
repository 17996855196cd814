"""How the Python lab tests report and clean up.

Each step prints one line, prefixed with the test's name and the seconds
since it began: `ok    what` or `FAIL  what: detail`. Failed checks are
collected, and the run ends with their list (exit status 1) or "all checks
passed" (0). A `require` that fails stops the test (Fatal) and the rest is
skipped. Processes a test starts go in CHILDREN: they are stopped on the way
out, whatever happened, so that the lab VM can unload the module.

    import steps
    from steps import check, log, require

    def main():
        ...
        return steps.verdict()

    if __name__ == "__main__":
        steps.run_main("lab.something", main, cleanup=extra_cleanup)
"""
import subprocess
import sys
import time

T0 = time.monotonic()
FAILURES = []
CHILDREN = []
_name = "test"


class Fatal(Exception):
    """A step the rest of the test depends on failed."""


def begin(name):
    """Names the test in every line from now on and restarts the clock."""
    global _name, T0
    _name, T0 = name, time.monotonic()


def elapsed():
    return time.monotonic() - T0


def log(msg):
    print(f"[{_name} {elapsed():6.1f}s] {msg}", flush=True)


def check(cond, what, detail=""):
    log(("ok    " if cond else "FAIL  ") + what + ("" if cond or not detail else f": {detail}"))
    if not cond:
        FAILURES.append(what)
    return cond


def require(cond, what, detail=""):
    if not check(cond, what, detail):
        raise Fatal(what)


def verdict():
    """The test's exit status, after a line that says it."""
    if FAILURES:
        log(f"{len(FAILURES)} check(s) failed: " + "; ".join(FAILURES))
        return 1
    log(f"all checks passed in {elapsed():.0f} s")
    return 0


def stop(proc, grace=10):
    """SIGTERM, then SIGKILL if `proc` is still there after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_children():
    """Every process in CHILDREN, newest first (stop)."""
    for child in reversed(CHILDREN):
        stop(child)


def run_main(name, main, cleanup=stop_children):
    """Runs main() as test `name` and exits with its status; `cleanup` runs
    whatever happened, and a failure of its own is logged, not raised (the
    lab must still unload the module)."""
    begin(name)
    status = 1
    try:
        status = main()
    except Fatal as err:
        log(f"stopped: {err}")
    finally:
        try:
            cleanup()
        except Exception as err:  # noqa: BLE001 - reported, never hiding the status
            log(f"cleanup: {err}")
    sys.exit(status)
