#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Checks of the lab harness itself: each way a lab run can go wrong is
reported as what it is, with exit status 125, instead of hanging."""

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

LAB = Path(__file__).resolve().parent / "lab.py"
MODULE = os.environ.get("PTNETMAP_KO", "")


def lab(*args, timeout=240):
    return subprocess.run([sys.executable, str(LAB), "run", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout)


class HarnessTest(unittest.TestCase):
    def test_exit_status_and_output_come_back(self):
        r = lab("--module", MODULE, "--", "sh", "-c",
                "grep -q '^ptnetmap ' /proc/modules && echo loaded; exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("loaded", r.stdout)

    def test_module_load_error_is_named(self):
        with tempfile.NamedTemporaryFile(suffix=".ko", dir="/tmp") as bogus:
            bogus.write(b"not an ELF module")
            bogus.flush()
            r = lab("--module", bogus.name, "--", "true")
        self.assertEqual(r.returncode, 125)
        self.assertIn("module load failed", r.stderr)

    def test_kernel_crash_is_reported_with_the_log(self):
        r = lab("--no-module", "--", "sh", "-c", "echo c > /proc/sysrq-trigger")
        self.assertEqual(r.returncode, 125)
        self.assertIn("kernel crash", r.stderr)
        self.assertIn("sysrq", r.stderr)

    def test_timeout_stops_the_vm(self):
        r = lab("--no-module", "--timeout", "40", "--", "sleep", "1000")
        self.assertEqual(r.returncode, 125)
        self.assertIn("timeout", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
