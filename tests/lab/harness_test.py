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
TESTDATA = LAB.parent / "testdata"

sys.path.insert(0, str(LAB.parent))
import lab as harness  # noqa: E402  (the module under test, found next to this file)


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
        # Where the CPUs were: both idle in the kernel, named by symbol, with
        # the code there (read through the monitor), and not taken for the
        # emulator's fault.
        for cpu in (0, 1):
            self.assertRegex(r.stderr, rf"CPU {cpu}: RIP 0xffffffff[0-9a-f]{{8}} "
                                       r"\w+\+0x[0-9a-f]+ \[([0-9a-f]{2} ){7}[0-9a-f]{2}\]")
        self.assertNotIn("stuck on a breakpoint", r.stderr)

    def test_lost_timer_reruns_the_job_once(self):
        # The first VM prints what RCU says when the emulator stops a CPU's
        # timer and then hangs; the harness must stop it long before the
        # timeout and run the job again in a new VM (the marker tells the
        # second run apart).
        job = ('if [ -e "$LAB_RESULTS/first" ]; then echo second run; exit 0; fi; '
               'touch "$LAB_RESULTS/first"; '
               "echo \"<3>rcu: rcu_preempt kthread timer wakeup didn't happen for "
               "9999 jiffies! g1 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x402\" >/dev/kmsg; "
               "sleep 1000")
        with tempfile.TemporaryDirectory(dir="/tmp") as results:
            r = lab("--no-module", "--timeout", "200", "--results", results,
                    "--", "sh", "-c", job, timeout=400)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("lost its timer interrupts", r.stderr)
        self.assertIn("running the job again", r.stderr)
        self.assertIn("second run", r.stdout)

    def test_lost_timer_twice_is_a_failure(self):
        job = ("echo \"<3>rcu: rcu_preempt kthread timer wakeup didn't happen for "
               "9999 jiffies!\" >/dev/kmsg; sleep 1000")
        r = lab("--no-module", "--timeout", "200", "--", "sh", "-c", job, timeout=400)
        self.assertEqual(r.returncode, 125)
        self.assertIn("lost its timer interrupts", r.stderr)

    def test_test_knobs_reach_the_job(self):
        # PAIR_* and the like pass through; other variables do not.
        env = dict(os.environ, PAIR_PINGS="17", UNRELATED_KNOB="x")
        r = subprocess.run([sys.executable, str(LAB), "run", "--quiet", "--no-module", "--",
                            "sh", "-c", 'echo "pings=$PAIR_PINGS other=${UNRELATED_KNOB:-}"'],
                           capture_output=True, text=True, timeout=240, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pings=17 other=\n", r.stdout)

    def test_nested_guest_times_out_before_the_lab_vm(self):
        # A level-2 guest whose own timeout would outlast the lab VM's is cut
        # short, so that its report (not a silent outer timeout) comes back.
        # The lab VM's clock is set two minutes back first: under emulation
        # it drifts from the host's, and the lab VM ends by the host's.
        job = (f"date -s @$(($(date +%s) - 120)) >/dev/null && exec {sys.executable} {LAB} "
               "guest --quiet --timeout 500 -- sleep 1000")
        r = lab("--no-module", "--kvm", "--timeout", "130", "--", "sh", "-c", job,
                timeout=400)
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertNotIn("the level-1 VM did not finish", r.stderr)
        self.assertRegex(r.stdout, r"cut to [1-8]\d s", r.stderr)
        self.assertIn("the level-2 VM did not finish", r.stdout, r.stderr)


    def test_silent_reset_of_a_nested_guest_names_where_its_cpus_were(self):
        # A level-2 guest that resets with nothing on its console (what a
        # triple fault looks like): reported as a reset, with the register
        # state at that moment and the instruction pointer by symbol.
        r = lab("--no-module", "--kvm", "--timeout", "300", "--", sys.executable, str(LAB),
                "guest", "--quiet", "--timeout", "200", "--",
                "sh", "-c", "echo b > /proc/sysrq-trigger; sleep 100", timeout=400)
        self.assertEqual(r.returncode, 125, r.stderr)
        # The lab VM's own report (stderr) says why, if its job's output is missing.
        self.assertIn("the level-2 VM reset before the job finished", r.stdout, r.stderr)
        self.assertIn("CPU state at the reset", r.stdout, r.stderr)
        self.assertRegex(r.stdout, r"CPU 0: RIP 0xffffffff[0-9a-f]{8} \w+\+0x[0-9a-f]+")
        self.assertRegex(r.stdout, r"CR0=[0-9a-f]+ CR2=[0-9a-f]+")
        # The kernel restarted itself: a real failure, never run again.
        self.assertNotIn("running the job again", r.stderr)

    def test_emulator_fault_in_a_nested_guest_reruns_the_whole_job(self):
        # What a level-2 guest's harness leaves when the emulator reset it:
        # the lab VM's harness runs the whole job once more (its host side
        # included), and says why.
        job = ('if [ -e "$LAB_RESULTS/first" ]; then echo second run; exit 0; fi; '
               'touch "$LAB_RESULTS/first"; '
               'echo "the level-2 VM reset silently" > "$LAB_RESULTS/emulator-faults"; '
               "exit 1")
        with tempfile.TemporaryDirectory(dir="/tmp") as results:
            r = lab("--no-module", "--results", results, "--", "sh", "-c", job)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("met a fault of the emulator", r.stderr)
        self.assertIn("the level-2 VM reset silently", r.stderr)
        self.assertIn("running the job again", r.stderr)
        self.assertIn("second run", r.stdout)



class EmulatorFaultTest(unittest.TestCase):
    """What the harness runs again (the emulator's fault) and what it never
    does (anything else that crashes a VM)."""

    def test_timer_interrupts_nested_until_the_stack_overflowed(self):
        # The lab VM's log from such a crash (2026-11-25).
        log = (TESTDATA / "irq_stack_overflow.log").read_text()
        self.assertTrue(harness.interrupt_taken_while_masked(log))

    def test_the_same_with_our_module_in_the_trace_is_ours(self):
        log = (TESTDATA / "irq_stack_overflow.log").read_text()
        log += "[   47.937030]  ? ptnh_worker+0x3c/0x2a0 [ptnetmap]\n"
        self.assertFalse(harness.interrupt_taken_while_masked(log))

    def test_a_silent_reset_elsewhere_is_the_emulators(self):
        state = ("CPU state at the reset:\n"
                 "  CPU 0: RIP 0xffffffff8c0f1a2b native_safe_halt+0xb\n"
                 "  CPU 1: RIP 0xffffffff8c4a0c17 copy_page+0x7\n")
        self.assertTrue(harness.silent_reset_is_emulators(state))
        self.assertTrue(harness.silent_reset_is_emulators(""))

    def test_a_reset_the_kernel_asked_for_is_not(self):
        state = ("CPU state at the reset:\n  CPU 0: RIP 0xffffffff8c06b5c5 "
                 "native_machine_emergency_restart+0x175\n")
        self.assertFalse(harness.silent_reset_is_emulators(state))

    def test_a_reset_inside_our_module_is_ours(self):
        state = ("CPU state at the reset:\n  CPU 1: RIP 0xffffffffc0a1b2c3 "
                 "ptnm_guest_rxsync+0x1c [ptnetmap]\n")
        self.assertFalse(harness.silent_reset_is_emulators(state))

    # The lab VM's CPUs when it reset in CI's bench.short (2026-11-25).
    LAB_VM_RESET = ("CPU state at the reset:\n"
                    "  CPU 0: RIP 0xffffffffc073620c __svm_vcpu_run+0x9c [kvm_amd] "
                    "[58 48 89 88 30 01 00 00]\n"
                    "  CPU 1: RIP 0x00000000004f92d6 user space\n"
                    "    CR0=80050033 CR2=fffffe0000000080 CR3=0000000002292000\n")

    def test_a_lab_vm_reset_inside_vmrun_is_the_emulators(self):
        self.assertTrue(harness.lab_vm_reset_is_emulators(self.LAB_VM_RESET))

    def test_a_lab_vm_reset_elsewhere_or_through_ours_is_not(self):
        elsewhere = self.LAB_VM_RESET.replace("__svm_vcpu_run+0x9c [kvm_amd]",
                                              "copy_page+0x7")
        self.assertFalse(harness.lab_vm_reset_is_emulators(elsewhere))
        ours = self.LAB_VM_RESET.replace("user space", "ptnh_worker+0x3c [ptnetmap]")
        self.assertFalse(harness.lab_vm_reset_is_emulators(ours))
        restart = self.LAB_VM_RESET.replace("user space",
                                            "native_machine_emergency_restart+0x175")
        self.assertFalse(harness.lab_vm_reset_is_emulators(restart))
        self.assertFalse(harness.lab_vm_reset_is_emulators(""))

    def test_a_cpu_looping_on_int3_at_its_handler_is_the_emulators(self):
        # Where the lab VM's CPUs were at a soft lockup (2026-11-25).
        stuck = ("CPU state when stopped:\n"
                 "  CPU 0: RIP 0xffffffff9d800ba0 asm_exc_int3+0x0\n"
                 "  CPU 1: RIP 0xffffffff9cd70441 smp_call_function_many_cond+0xf1\n")
        self.assertTrue(harness.INT3_LOOP.search(stuck))
        later = stuck.replace("asm_exc_int3+0x0", "asm_exc_int3+0x1c")
        self.assertFalse(harness.INT3_LOOP.search(later))

    # Two CPUs as the monitor showed them when a job timed out in CI
    # (2026-11-25): CPU 0 on the 5-byte nop of a static key in __schedule,
    # which CPU 1 (in smp_call_function_many_cond) was patching.
    HELD = (0xffffffffa385267b, bytes.fromhex("cc1f440000 41c744"))
    PATCHING = (0xffffffffa2f70441, bytes.fromhex("8b4e0883e10175f6"))

    def test_a_cpu_held_on_an_int3_is_the_emulators(self):
        snapshots = [[self.HELD, self.PATCHING]] * 3
        self.assertEqual(harness.held_at_breakpoint(snapshots), [0])

    def test_a_cpu_that_moves_on_is_not_held(self):
        moved = (0xffffffffa3852680, self.HELD[1][5:] + b"\0\0\0")
        snapshots = [[self.HELD, self.PATCHING], [self.HELD, self.PATCHING],
                     [moved, self.PATCHING]]
        self.assertEqual(harness.held_at_breakpoint(snapshots), [])

    def test_a_cpu_waiting_elsewhere_is_not_held(self):
        # Idle after sti; hlt, or at the patched site once the int3 is gone.
        idle = (0xffffffffa385bc2b, bytes.fromhex("c3cccccccc0f1f40"))
        patched = (self.HELD[0], bytes.fromhex("e9b600000041c744"))
        for cpu0 in (idle, patched):
            self.assertEqual(harness.held_at_breakpoint([[cpu0, self.PATCHING]] * 3), [])
        self.assertEqual(harness.held_at_breakpoint([[(self.HELD[0], None)]] * 3), [])

    def test_an_ordinary_crash_is_not_the_emulators(self):
        log = ("[    9.1] sysrq: Trigger a crash\n"
               "[    9.1] Kernel panic - not syncing: sysrq triggered crash\n"
               "[    9.1] Call Trace:\n[    9.1]  <TASK>\n"
               "[    9.1]  sysrq_handle_crash+0x16/0x20\n")
        self.assertFalse(harness.interrupt_taken_while_masked(log))


if __name__ == "__main__":
    unittest.main(verbosity=2)
