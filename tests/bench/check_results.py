#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""What a benchmark run must show (scripts/bench.sh, the bench.short test):

  - every series, every point: batch sweep (pipe, VALE, AF_PACKET/veth) with
    traffic, ring sizes (pipe, VALE), round trips blocking and busy for each
    path, the attachment against batch size, the offered rates
  - at saturation ("max") fewer than one notification (kicks + interrupts)
    per packet, and no loss between the two guests
  - idle: no worker wake-up, no interrupt, no kick, and (almost) no CPU
  - with --guests (scripts/bench.sh --guests): for every batch of the
    host-to-host sweep, traffic guest -> host and host -> guest over the pipe
    and over VALE; round trips both ways, blocking and busy, none lost; and
    each attachment under one notification per packet over the whole run.
    Two guests (pair_job.sh): guest -> guest at each of its batches over the
    pipe (every packet sent received, in order), VALE (in order, drops
    allowed) and virtio-net; the
    cascade with 0, 1 and 2 bridging VMs at each of its batches, every
    packet sent received in order; no damaged frame; each of their
    attachments carried traffic with under one notification per packet

    check_results.py [--guests] DIR      (DIR/results.json from report.py)
Exit status 0 when all holds, 1 otherwise (each problem on stderr)."""
import json
import sys
from pathlib import Path

# An idle attachment: its worker may not run at all (lab.pt asserts 0 ns);
# the guests only sleep. Allow for a scheduler tick of accounting noise.
IDLE_CPU_MAX = 0.002


def check(doc, guests=False):
    rows = doc["results"]
    errors = []

    def sel(series, **m):
        return [r for r in rows if r.get("series") == series
                and all(r.get(k) == v for k, v in m.items())]

    batches = sorted({r["batch"] for r in sel("batch")})
    if not batches:
        errors.append("batch: no results")
    for b in batches:
        for path in ("pipe", "vale", "afpacket_veth"):
            rx = sel("batch", batch=b, path=path, side="rx")
            if not rx or not rx[0].get("mpps", 0) > 0:
                errors.append(f"batch {b} {path}: no traffic received")
    slots = sorted({r["slots"] for r in sel("ring")})
    if not slots:
        errors.append("ring: no results")
    for s in slots:
        for path in ("pipe", "vale"):
            rx = sel("ring", slots=s, path=path, side="rx")
            if not rx or not rx[0].get("mpps", 0) > 0:
                errors.append(f"ring {s} {path}: no traffic received")
    for path in ("pipe", "vale", "afpacket_veth"):
        for wait in ("blocking", "busy"):
            r = sel("rtt", path=path, wait=wait)
            if not r or not r[0].get("rtt_p50_us", 0) > 0:
                errors.append(f"rtt {path} {wait}: no round trips")
    pt = sel("pt_batch")
    if not pt:
        errors.append("pt_batch: no results")
    for r in pt:
        if not r.get("mpps", 0) > 0:
            errors.append(f"pt_batch {r.get('batch')}: no traffic")

    rates = {r["rate"]: r for r in sel("rates")}
    for need in ("idle", "max"):
        if need not in rates:
            errors.append(f"rates: no '{need}' measurement")
    sat = rates.get("max")
    if sat:
        if not sat.get("sent", 0) > 0 or sat.get("received") != sat.get("sent"):
            errors.append(f"rates max: sent {sat.get('sent')}, received {sat.get('received')}")
        n = sat.get("notifications_per_packet", 99)
        if not n < 1:
            errors.append(f"rates max: {n:.3f} notifications per packet (want < 1)")
    idle = rates.get("idle")
    if idle:
        for k in ("wakeups", "interrupts", "kicks"):
            if idle.get(k, -1) != 0:
                errors.append(f"rates idle: {idle.get(k)} {k} (want 0)")
        for k in ("worker_cpu", "guest_cpu"):
            if not idle.get(k, 1) <= IDLE_CPU_MAX:
                errors.append(f"rates idle: {k} {idle.get(k)} (want about 0)")
    for name, r in rates.items():
        if name not in ("idle", "max") and r.get("received") != r.get("sent"):
            errors.append(f"rates {name}: sent {r.get('sent')}, received {r.get('received')}")
    if guests:
        errors += check_placements(sel, batches)
        errors += check_pair(sel)
    return errors


PLACEMENTS = ("guest-host", "host-guest")


def check_placements(sel, batches):
    errors = []
    for path in ("pipe", "vale"):
        for where in PLACEMENTS:
            for b in batches:
                r = sel("placement_batch", placement=where, path=path, batch=b)
                if not r or not r[0].get("mpps", 0) > 0:
                    errors.append(f"placement {where} {path} batch {b}: no traffic received")
            for wait in ("blocking", "busy"):
                r = sel("placement_rtt", placement=where, path=path, wait=wait)
                if not r or not r[0].get("rtt_p50_us", 0) > 0:
                    errors.append(f"placement rtt {where} {path} {wait}: no round trips")
                elif r[0].get("lost", 1) != 0:
                    errors.append(f"placement rtt {where} {path} {wait}: "
                                  f"{r[0].get('lost')} round trips lost")
        n = sel("placement_notify", path=path)
        if not n or not n[0].get("packets", 0) > 0:
            errors.append(f"placement {path}: no attachment counters")
        elif not (n[0]["kicks_per_packet"] + n[0]["interrupts_per_packet"]) < 1:
            errors.append(f"placement {path}: {n[0]['kicks_per_packet']:.3f} kicks and "
                          f"{n[0]['interrupts_per_packet']:.3f} interrupts per packet (want < 1)")
    return errors


GUEST_PATHS = ("pipe", "vale", "virtio")
CASCADE_VMS = (0, 1, 2)


def check_pair(sel):
    """The two-guest series: guest to guest and the cascade."""
    errors = []

    def received(what, r, lossless):
        if not r or not r[0].get("mpps", 0) > 0:
            return [f"{what}: no traffic received"]
        row = r[0]
        # Damage and reordering anywhere (a VALE port whose ring is full
        # drops what comes next, it never reorders), loss where nothing is
        # dropped. Everything wrong in one message: a count that is off means
        # something else when frames came out of order too.
        keys = ("lost", "out_of_order", "corrupted") if lossless else ("out_of_order",
                                                                       "corrupted")
        faults = [f"{row[k]} {k}" for k in keys if row.get(k, 0) != 0]
        if lossless and row.get("packets") != row.get("sent"):
            faults.insert(0, f"{row.get('sent')} sent, {row.get('packets')} received "
                          "(a pipe never drops)")
        return [f"{what}: " + ", ".join(faults)] if faults else []

    for series, key, values in (("guest_batch", "path", GUEST_PATHS),
                                ("cascade", "vms", CASCADE_VMS)):
        batches = sorted({r["batch"] for r in sel(series) if "batch" in r})
        if not batches:
            errors.append(f"{series}: no results")
        for b in batches:
            for v in values:
                r = sel(series, batch=b, **{key: v})
                lossless = series == "cascade" or v == "pipe"
                errors += received(f"{series} {key} {v} batch {b}", r, lossless)
    for series, paths in (("guest_notify", ("pipe", "vale")), ("cascade_notify", ("pipe",))):
        rows = sel(series)
        for path in paths:
            if not any(r.get("path") == path for r in rows):
                errors.append(f"{series} {path}: no attachment counters")
        for r in rows:
            if not r.get("packets", 0) > 0:
                errors.append(f"{series} {r.get('port')}: no packets")
            elif not (r["kicks_per_packet"] + r["interrupts_per_packet"]) < 1:
                errors.append(f"{series} {r['port']}: {r['kicks_per_packet']:.3f} kicks and "
                              f"{r['interrupts_per_packet']:.3f} interrupts per packet (want < 1)")
    return errors


def main():
    args = sys.argv[1:]
    guests = "--guests" in args
    args = [a for a in args if a != "--guests"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    doc = json.loads((Path(args[0]) / "results.json").read_text())
    errors = check(doc, guests)
    for e in errors:
        print("check:", e, file=sys.stderr)
    print(f"check: {len(doc['results'])} results, {len(errors)} problems")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
