#!/usr/bin/env python3
"""tests.steps: what every Python lab test relies on from steps.py: a failed
check fails the run, a failed requirement stops it, and the processes it
started are stopped whatever happened."""
import subprocess
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_test(body):
    """Exit status and output of a small test built on steps.run_main."""
    script = ("import subprocess, sys\n"
              f"sys.path.insert(0, {str(HERE)!r})\n"
              "import steps\nfrom steps import check, require, log\n"
              "def main():\n"
              + "".join(f"    {line}\n" for line in body.splitlines())
              + "    return steps.verdict()\n"
              "steps.run_main('t.demo', main)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout


class StepsTest(unittest.TestCase):
    def test_all_checks_passing_exits_0(self):
        rc, out = run_test("check(True, 'one')\ncheck(1 == 1, 'two')")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\[t\.demo +\d+\.\ds\] ok    one\n")
        self.assertIn("all checks passed", out)

    def test_a_failed_check_fails_the_run_and_is_named_at_the_end(self):
        rc, out = run_test("check(False, 'the port exists', 'no vale0:p1')\n"
                           "check(True, 'later step still runs')")
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL  the port exists: no vale0:p1", out)
        self.assertIn("ok    later step still runs", out)
        self.assertIn("1 check(s) failed: the port exists", out)

    def test_a_failed_requirement_stops_the_test(self):
        rc, out = run_test("require(False, 'libvirtd answers')\ncheck(True, 'never')")
        self.assertEqual(rc, 1, out)
        self.assertIn("stopped: libvirtd answers", out)
        self.assertNotIn("never", out)

    def test_children_are_stopped_even_when_main_raises(self):
        rc, out = run_test(
            "p = subprocess.Popen(['sleep', '600'])\n"
            "steps.CHILDREN.append(p)\n"
            "log(f'child {p.pid}')\n"
            "raise RuntimeError('boom')")
        self.assertNotEqual(rc, 0)
        pid = int(out.split("child ")[1].split()[0])
        # Reaped by stop_children: no such process any more.
        self.assertFalse(Path(f"/proc/{pid}").exists(), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
