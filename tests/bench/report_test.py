#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Unit test of the benchmark suite's report and checker on synthetic
results: a complete run passes and yields results.json, results.csv and
every plot; runs that lack a series, notify once per packet at saturation,
lose packets or spend CPU while idle are refused."""
import copy
import csv
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check_results  # noqa: E402


def good_rows():
    rows = []
    for b in (1, 8, 64):
        for path, mpps in (("pipe", 0.2 * b), ("vale", 0.15 * b), ("afpacket_veth", 0.05 * b)):
            for side in ("tx", "rx"):
                rows.append({"series": "batch", "batch": b, "path": path, "side": side,
                             "mpps": mpps, "packets": 1000})
    for s in (64, 256):
        for path in ("pipe", "vale"):
            rows.append({"series": "ring", "slots": s, "batch": min(s, 256), "path": path,
                         "side": "rx", "mpps": 1.0})
    for path in ("pipe", "vale", "afpacket_veth"):
        for wait in ("blocking", "busy"):
            rows.append({"series": "rtt", "path": path, "wait": wait, "rtt_p50_us": 100.0,
                         "replies": 300})
    for b in (1, 8, 64):
        rows.append({"series": "pt_batch", "path": "pt_pipe", "batch": b, "mpps": 0.1,
                     "kicks_per_packet": 1 / b, "interrupts_per_packet": 0.01})
    rows.append({"series": "rates", "rate": "idle", "sent": 0, "received": 0, "kicks": 0,
                 "interrupts": 0, "wakeups": 0, "kicks_per_packet": 0,
                 "interrupts_per_packet": 0, "notifications_per_packet": 0,
                 "worker_cpu": 0.0, "guest_cpu": 0.0001})
    rows.append({"series": "rates", "rate": "1000", "sent": 3000, "received": 3000,
                 "kicks": 2900, "interrupts": 2800, "wakeups": 3000,
                 "kicks_per_packet": 0.97, "interrupts_per_packet": 0.93,
                 "notifications_per_packet": 1.9, "worker_cpu": 0.02, "guest_cpu": 0.01})
    rows.append({"series": "rates", "rate": "max", "sent": 90000, "received": 90000,
                 "kicks": 90, "interrupts": 80, "wakeups": 900, "kicks_per_packet": 0.001,
                 "interrupts_per_packet": 0.0009, "notifications_per_packet": 0.0019,
                 "worker_cpu": 0.9, "guest_cpu": 1.0})
    return rows


def guest_rows():
    """What guest_job.sh adds (scripts/bench.sh --guests)."""
    rows = []
    for path in ("pipe", "vale"):
        for where in ("guest-host", "host-guest"):
            for b in (1, 8, 64):
                rows.append({"series": "placement_batch", "placement": where, "path": path,
                             "side": "rx", "batch": b, "mpps": 0.01 * b})
            for wait in ("blocking", "busy"):
                rows.append({"series": "placement_rtt", "placement": where, "path": path,
                             "wait": wait, "rtt_p50_us": 900.0, "replies": 200, "lost": 0})
        rows.append({"series": "placement_notify", "path": path, "port": f"{path}:g",
                     "packets": 400000, "kicks_per_packet": 0.02,
                     "interrupts_per_packet": 0.003, "wakeups_per_packet": 0.03})
    return rows


def pair_rows():
    """What pair_job.sh adds (two guests, scripts/bench.sh --guests)."""
    rows = []
    for b in (1, 64):
        for path, mpps in (("pipe", 0.004 * b), ("vale", 0.002 * b), ("virtio", 0.001 * b)):
            got = 1000 if path == "pipe" else 800
            rows.append({"series": "guest_batch", "path": path, "side": "rx", "batch": b,
                         "mpps": mpps, "packets": got, "sent": 1000})
    for vms, mpps in ((0, 0.4), (1, 0.1), (2, 0.05)):
        rows.append({"series": "cascade", "path": "pipe", "vms": vms, "side": "rx",
                     "batch": 256, "mpps": mpps, "packets": 5000, "sent": 5000})
    for port in ("gg{1", "gg}1", "vale6:a", "vale6:b"):
        rows.append({"series": "guest_notify", "path": "vale" if ":" in port else "pipe",
                     "port": port, "packets": 9000, "kicks_per_packet": 0.01,
                     "interrupts_per_packet": 0.02, "wakeups_per_packet": 0.03})
    for port in ("d0}1", "d1{1", "e0}1", "e1{1", "e1}1"):
        rows.append({"series": "cascade_notify", "path": "pipe", "port": port,
                     "packets": 20000, "kicks_per_packet": 0.05,
                     "interrupts_per_packet": 0.04, "wakeups_per_packet": 0.06})
    return rows


def all_rows():
    return good_rows() + guest_rows() + pair_rows()


def rate(rows, name):
    return next(r for r in rows if r.get("rate") == name)


class CheckTest(unittest.TestCase):
    def test_complete_run_passes(self):
        self.assertEqual(check_results.check({"results": good_rows()}), [])

    def test_missing_series_is_refused(self):
        for series in ("batch", "ring", "rtt", "pt_batch", "rates"):
            rows = [r for r in good_rows() if r["series"] != series]
            self.assertNotEqual(check_results.check({"results": rows}), [], series)

    def test_missing_baseline_point_is_refused(self):
        rows = [r for r in good_rows()
                if not (r["series"] == "batch" and r["path"] == "afpacket_veth" and r["batch"] == 8)]
        errors = check_results.check({"results": rows})
        self.assertTrue(any("batch 8 afpacket_veth" in e for e in errors), errors)

    def test_one_notification_per_packet_at_saturation_is_refused(self):
        rows = good_rows()
        rate(rows, "max")["notifications_per_packet"] = 1.0
        self.assertTrue(any("notifications" in e for e in check_results.check({"results": rows})))

    def test_loss_is_refused(self):
        rows = good_rows()
        rate(rows, "max")["received"] = 89999
        self.assertNotEqual(check_results.check({"results": rows}), [])

    def test_idle_activity_is_refused(self):
        for key, value in (("wakeups", 1), ("interrupts", 2), ("worker_cpu", 0.01),
                           ("guest_cpu", 0.05)):
            rows = copy.deepcopy(good_rows())
            rate(rows, "idle")[key] = value
            errors = check_results.check({"results": rows})
            self.assertTrue(any(key in e for e in errors), (key, errors))


class GuestPlacementsTest(unittest.TestCase):
    def test_complete_run_with_guests_passes(self):
        rows = all_rows()
        self.assertEqual(check_results.check({"results": rows}, guests=True), [])

    def test_guests_are_required_only_when_asked_for(self):
        self.assertEqual(check_results.check({"results": good_rows()}), [])
        errors = check_results.check({"results": good_rows()}, guests=True)
        self.assertTrue(any("guest-host pipe batch 1" in e for e in errors), errors)

    def test_a_placement_without_traffic_is_refused(self):
        rows = all_rows()
        for r in rows:
            if r["series"] == "placement_batch" and r["placement"] == "host-guest" \
                    and r["path"] == "vale" and r["batch"] == 8:
                r["mpps"] = 0
        errors = check_results.check({"results": rows}, guests=True)
        self.assertEqual(errors, ["placement host-guest vale batch 8: no traffic received"])

    def test_lost_round_trips_are_refused(self):
        rows = all_rows()
        next(r for r in rows if r["series"] == "placement_rtt")["lost"] = 3
        errors = check_results.check({"results": rows}, guests=True)
        self.assertTrue(any("3 round trips lost" in e for e in errors), errors)

    def test_a_notification_per_packet_is_refused(self):
        rows = all_rows()
        next(r for r in rows if r["series"] == "placement_notify")["interrupts_per_packet"] = 1.0
        errors = check_results.check({"results": rows}, guests=True)
        self.assertTrue(any("per packet (want < 1)" in e for e in errors), errors)

    def test_report_has_the_placements(self):
        with tempfile.TemporaryDirectory() as d:
            rows = all_rows()
            (Path(d) / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            subprocess.run([sys.executable, str(HERE / "report.py"), d], check=True,
                           stdout=subprocess.DEVNULL)
            data = (Path(d) / "plots" / "placements.png").read_bytes()
            self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
            tables = (Path(d) / "tables.md").read_text()
            # batch 8 over the pipe: 0.08 Mpps from the guest, 1.6 host to host
            self.assertIn("| pipe | 8 | 1.600 | 0.080 | 0.080 | 0.05x | 0.05x |", tables)
            self.assertIn("| vale | busy | 100.0 | 900.0 | 900.0 | 9.00x | 9.00x |", tables)
            r = subprocess.run([sys.executable, str(HERE / "check_results.py"), "--guests", d])
            self.assertEqual(r.returncode, 0)


class TwoGuestsTest(unittest.TestCase):
    def errors(self, rows):
        return check_results.check({"results": rows}, guests=True)

    def test_two_guests_are_required_with_guests(self):
        rows = good_rows() + guest_rows()
        errors = self.errors(rows)
        self.assertIn("guest_batch: no results", errors)
        self.assertIn("cascade: no results", errors)
        self.assertIn("cascade_notify pipe: no attachment counters", errors)

    def test_a_missing_baseline_point_is_refused(self):
        rows = [r for r in all_rows() if not (r["series"] == "guest_batch"
                                              and r["path"] == "virtio" and r["batch"] == 64)]
        self.assertEqual(self.errors(rows), ["guest_batch path virtio batch 64: no traffic received"])

    def test_loss_on_a_pipe_is_refused_and_on_vale_not(self):
        rows = all_rows()
        for r in rows:
            if r["series"] == "guest_batch" and r["batch"] == 1:
                r["packets"] = 999
        self.assertEqual(self.errors(rows), ["guest_batch path pipe batch 1: 1000 sent, "
                                             "999 received (a pipe never drops)"])

    def test_loss_in_the_cascade_is_refused(self):
        rows = all_rows()
        next(r for r in rows if r["series"] == "cascade" and r["vms"] == 2)["packets"] = 4990
        errors = self.errors(rows)
        self.assertEqual(errors, ["cascade vms 2 batch 256: 5000 sent, 4990 received "
                                  "(a pipe never drops)"])

    def test_damaged_frames_are_refused(self):
        rows = all_rows()
        next(r for r in rows if r["series"] == "guest_batch" and r["path"] == "vale")[
            "corrupted"] = 2
        self.assertEqual(self.errors(rows), ["guest_batch path vale batch 1: 2 corrupted"])

    def test_reordering_is_refused_on_pipes_and_vale(self):
        # A VALE port drops at a full ring, but never reorders.
        rows = all_rows()
        for r in rows:
            if r["series"] == "guest_batch" and r["path"] in ("pipe", "vale") \
                    and r["batch"] == 64:
                r["out_of_order"] = 5
        self.assertEqual(self.errors(rows), ["guest_batch path pipe batch 64: 5 out_of_order",
                                             "guest_batch path vale batch 64: 5 out_of_order"])

    def test_frames_delivered_twice_are_named_with_the_count(self):
        # A receiver handed frames it had taken already: more received than
        # sent, and the repeats out of sequence, in one message.
        rows = all_rows()
        r = next(r for r in rows if r["series"] == "guest_batch" and r["path"] == "pipe"
                 and r["batch"] == 64)
        r["packets"] += 122
        r["out_of_order"] = 122
        self.assertEqual(self.errors(rows), ["guest_batch path pipe batch 64: 1000 sent, "
                                             "1122 received (a pipe never drops), "
                                             "122 out_of_order"])

    def test_a_chain_without_traffic_is_refused(self):
        rows = [r for r in all_rows() if not (r["series"] == "cascade" and r["vms"] == 1)]
        self.assertEqual(self.errors(rows), ["cascade vms 1 batch 256: no traffic received"])

    def test_a_notification_per_packet_in_the_cascade_is_refused(self):
        rows = all_rows()
        r = next(r for r in rows if r["series"] == "cascade_notify" and r["port"] == "e1}1")
        r["kicks_per_packet"] = 0.7
        r["interrupts_per_packet"] = 0.4
        self.assertEqual(self.errors(rows), ["cascade_notify e1}1: 0.700 kicks and 0.400 "
                                             "interrupts per packet (want < 1)"])

    def test_an_idle_attachment_is_refused(self):
        rows = all_rows()
        next(r for r in rows if r["series"] == "guest_notify")["packets"] = 0
        self.assertEqual(self.errors(rows), ["guest_notify gg{1: no packets"])

    def test_report_has_two_guests_and_the_cascade(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "results.jsonl").write_text("".join(json.dumps(r) + "\n"
                                                           for r in all_rows()))
            subprocess.run([sys.executable, str(HERE / "report.py"), d], check=True,
                           stdout=subprocess.DEVNULL)
            for png in ("guest_batch", "cascade"):
                data = (Path(d) / "plots" / f"{png}.png").read_bytes()
                self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", png)
            tables = (Path(d) / "tables.md").read_text()
            # batch 64: pipe 0.256, VALE 0.128, virtio-net 0.064 Mpps
            self.assertIn("| 64 | 0.256 | 0.128 | 0.064 | 4.00x | 2.00x | 1000 / 800 / - |", tables)
            self.assertIn("| 256 | 0.400 | 0.100 | 0.050 | 0.25x | 0.12x | 0.50x |", tables)
            self.assertIn("| cascade_notify | e1}1 | 20000 | 0.0500 | 0.0400 | 0.0600 |", tables)
            r = subprocess.run([sys.executable, str(HERE / "check_results.py"), "--guests", d])
            self.assertEqual(r.returncode, 0)


class ReportTest(unittest.TestCase):
    def test_tables_and_plots(self):
        with tempfile.TemporaryDirectory() as d:
            rows = good_rows()
            (Path(d) / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            subprocess.run([sys.executable, str(HERE / "report.py"), d], check=True,
                           stdout=subprocess.DEVNULL)
            doc = json.loads((Path(d) / "results.json").read_text())
            self.assertEqual(doc["results"], rows)
            with open(Path(d) / "results.csv") as f:
                self.assertEqual(len(list(csv.DictReader(f))), len(rows))
            for png in ("batch", "ring", "rtt", "pt_batch", "rates"):
                data = (Path(d) / "plots" / f"{png}.png").read_bytes()
                self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", png)
            r = subprocess.run([sys.executable, str(HERE / "check_results.py"), d])
            self.assertEqual(r.returncode, 0)

    def test_bad_line_is_reported(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "results.jsonl").write_text('{"series": "batch"}\n{oops\n')
            r = subprocess.run([sys.executable, str(HERE / "report.py"), d, "--no-plots"],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("results.jsonl:2", r.stderr)


if __name__ == "__main__":
    unittest.main()
