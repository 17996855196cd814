#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The benchmark suite's results: from the lab job's results.jsonl to
results.json, results.csv and PNG plots, every figure with its ratio to the
baseline measured in the same run (AF_PACKET over a veth pair; between two
guests virtio-net on a Linux bridge; for the cascade the chain without VMs).

    report.py DIR [--no-plots]

DIR holds results.jsonl (tests/bench/lab_job.sh); results.json, results.csv,
tables.md (the tables of docs/benchmarks.md) and plots/*.png are written
next to it."""
import csv
import json
import sys
from pathlib import Path

BASELINE = "afpacket_veth"
LABELS = {
    "pipe": "netmap pipe (zero copy)",
    "vale": "VALE 1 to 1 (copy)",
    "afpacket_veth": "AF_PACKET over veth (baseline)",
    "pt_pipe": "passthrough attachment, pipe",
    "virtio": "virtio-net, tap on a Linux bridge (baseline)",
}
GUEST_BASELINE = "virtio"


def load(d):
    rows = []
    for n, line in enumerate((Path(d) / "results.jsonl").read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"results.jsonl:{n}: {e}")
    return rows


def select(rows, series, **match):
    return [r for r in rows if r.get("series") == series
            and all(r.get(k) == v for k, v in match.items())]


def curve(rows, series, path, x, y="mpps", **match):
    """{x: y} of the receive side of one path."""
    pts = {}
    for r in select(rows, series, path=path, **match):
        if r.get("side", "rx") == "rx" and x in r and y in r:
            pts[r[x]] = r[y]
    return dict(sorted(pts.items()))


def p50(rows, series, **match):
    """The median round trip of the first matching row, or None."""
    r = select(rows, series, **match)
    return r[0].get("rtt_p50_us") if r else None


def baseline_at(rows, batch):
    pts = curve(rows, "batch", BASELINE, "batch")
    return pts.get(batch)


def write_tables(d, rows):
    d = Path(d)
    (d / "results.json").write_text(json.dumps({"results": rows}, indent=1) + "\n")
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(d / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def fmt(v, digits=3):
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def times(v, b, digits=1):
    """v / b as "N.Nx", or "-" without a baseline."""
    r = ratio(v, b)
    return "-" if r != r else f"{r:.{digits}f}x"


def markdown(rows):
    """The run as the markdown tables of docs/benchmarks.md."""
    out = []
    base = curve(rows, "batch", BASELINE, "batch")
    pipe = curve(rows, "batch", "pipe", "batch")
    vale = curve(rows, "batch", "vale", "batch")
    pt = curve(rows, "pt_batch", "pt_pipe", "batch")
    out += ["| batch | pipe Mpps | VALE Mpps | AF_PACKET/veth Mpps | pipe / veth | VALE / veth"
            " | attachment Mpps | attachment / veth |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for b in sorted(set(base) | set(pipe) | set(vale) | set(pt)):
        out.append(f"| {b} | {fmt(pipe.get(b))} | {fmt(vale.get(b))} | {fmt(base.get(b))} | "
                   f"{times(pipe.get(b), base.get(b), 1)} | "
                   f"{times(vale.get(b), base.get(b), 1)} | {fmt(pt.get(b))} | "
                   f"{times(pt.get(b), base.get(b), 1)} |")
    out += ["", "| slots | batch | pipe Mpps | VALE Mpps | pipe / veth | VALE / veth |",
            "|---:|---:|---:|---:|---:|---:|"]
    rp = curve(rows, "ring", "pipe", "slots")
    rv = curve(rows, "ring", "vale", "slots")
    bat = {r["slots"]: r["batch"] for r in select(rows, "ring")}
    for s in sorted(set(rp) | set(rv)):
        bb = baseline_at(rows, bat.get(s))
        out.append(f"| {s} | {bat.get(s)} | {fmt(rp.get(s))} | {fmt(rv.get(s))} | "
                   f"{times(rp.get(s), bb, 1)} | {times(rv.get(s), bb, 1)} |")
    out += ["", "| path | wait | p50 µs | avg µs | p99 µs | p50 / veth (same wait) |",
            "|---|---|---:|---:|---:|---:|"]
    for path in ("pipe", "vale", BASELINE):
        for wait in ("blocking", "busy"):
            base_p50 = p50(rows, "rtt", path=BASELINE, wait=wait)
            for r in select(rows, "rtt", path=path, wait=wait):
                out.append(f"| {path} | {wait} | {fmt(r.get('rtt_p50_us'), 1)} | "
                           f"{fmt(r.get('rtt_avg_us'), 1)} | {fmt(r.get('rtt_p99_us'), 1)} | "
                           f"{times(r.get('rtt_p50_us'), base_p50, 2)} |")
    out += ["", "| offered | achieved pps | kicks/pkt | interrupts/pkt | worker wake-ups/pkt"
            " | worker CPU | guests CPU | kicks, interrupts, wake-ups |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in select(rows, "rates"):
        out.append(f"| {r['rate']} | {r.get('pps', 0):.0f} | {fmt(r.get('kicks_per_packet'), 4)} | "
                   f"{fmt(r.get('interrupts_per_packet'), 4)} | {fmt(r.get('wakeups_per_packet'), 4)} | "
                   f"{100 * r.get('worker_cpu', 0):.1f}% | {100 * r.get('guest_cpu', 0):.1f}% | "
                   f"{r.get('kicks')}, {r.get('interrupts')}, {r.get('wakeups')} |")
    out += placement_tables(rows)
    out += pair_tables(rows)
    return "\n".join(out) + "\n"


PLACEMENTS = {"guest-host": "guest → host", "host-guest": "host → guest"}


def placement_tables(rows):
    """The guest placements (scripts/bench.sh --guests) next to host to host
    over the same path in the same run; nothing without them."""
    if not select(rows, "placement_batch"):
        return []
    out = ["", "| path | batch | host → host Mpps | guest → host Mpps | host → guest Mpps"
           " | guest → host / host → host | host → guest / host → host |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for path in ("pipe", "vale"):
        hh = curve(rows, "batch", path, "batch")
        gh = curve(rows, "placement_batch", path, "batch", placement="guest-host")
        hg = curve(rows, "placement_batch", path, "batch", placement="host-guest")
        for b in sorted(set(gh) | set(hg)):
            out.append(f"| {path} | {b} | {fmt(hh.get(b))} | {fmt(gh.get(b))} | {fmt(hg.get(b))}"
                       f" | {times(gh.get(b), hh.get(b), 2)} | {times(hg.get(b), hh.get(b), 2)} |")
    out += ["", "| path | wait | host → host p50 µs | guest → host p50 µs | host → guest p50 µs"
            " | guest → host / host → host | host → guest / host → host |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for path in ("pipe", "vale"):
        for wait in ("blocking", "busy"):
            hh = p50(rows, "rtt", path=path, wait=wait)
            gh, hg = (p50(rows, "placement_rtt", path=path, wait=wait, placement=where)
                      for where in PLACEMENTS)
            out.append(f"| {path} | {wait} | {fmt(hh, 1)} | {fmt(gh, 1)} | {fmt(hg, 1)} | "
                       f"{times(gh, hh, 2)} | {times(hg, hh, 2)} |")
    out += ["", "| path | attachment port | packets | kicks/pkt | interrupts/pkt | wake-ups/pkt |",
            "|---|---|---:|---:|---:|---:|"]
    for r in select(rows, "placement_notify"):
        out.append(f"| {r['path']} | {r['port']} | {r['packets']} | "
                   f"{fmt(r.get('kicks_per_packet'), 4)} | {fmt(r.get('interrupts_per_packet'), 4)} | "
                   f"{fmt(r.get('wakeups_per_packet'), 4)} |")
    return out


def cascade_curves(rows):
    """{batch: {vms: Mpps}} of the cascade."""
    out = {}
    for r in select(rows, "cascade"):
        out.setdefault(r["batch"], {})[r["vms"]] = r.get("mpps")
    return dict(sorted(out.items()))


def pair_tables(rows):
    """Two guests (pair_job.sh): guest to guest next to virtio-net, the
    cascade next to the chain without VMs; nothing without them."""
    out = []
    if select(rows, "guest_batch"):
        out += ["", "| batch | pipe Mpps | VALE Mpps | virtio-net Mpps | pipe / virtio-net"
                " | VALE / virtio-net | VALE sent / received / out of order |",
                "|---:|---:|---:|---:|---:|---:|---:|"]
        pipe, vale, vn = (curve(rows, "guest_batch", p, "batch")
                          for p in ("pipe", "vale", GUEST_BASELINE))
        for b in sorted(set(pipe) | set(vale) | set(vn)):
            v = select(rows, "guest_batch", path="vale", batch=b)
            v = v[0] if v else {}
            out.append(f"| {b} | {fmt(pipe.get(b))} | {fmt(vale.get(b))} | {fmt(vn.get(b))} | "
                       f"{times(pipe.get(b), vn.get(b), 2)} | {times(vale.get(b), vn.get(b), 2)} | "
                       f"{v.get('sent', '-')} / {v.get('packets', '-')} / "
                       f"{v.get('out_of_order', '-')} |")
    cascade = cascade_curves(rows)
    if cascade:
        out += ["", "| batch | 0 VMs Mpps | 1 VM Mpps | 2 VMs Mpps | 1 VM / 0 | 2 VMs / 0"
                " | 2 VMs / 1 VM |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for b, m in cascade.items():
            out.append(f"| {b} | {fmt(m.get(0))} | {fmt(m.get(1))} | {fmt(m.get(2))} | "
                       f"{times(m.get(1), m.get(0), 2)} | {times(m.get(2), m.get(0), 2)} | "
                       f"{times(m.get(2), m.get(1), 2)} |")
    notify = select(rows, "guest_notify") + select(rows, "cascade_notify")
    if notify:
        out += ["", "| series | attachment port | packets | kicks/pkt | interrupts/pkt"
                " | wake-ups/pkt |", "|---|---|---:|---:|---:|---:|"]
        for r in notify:
            out.append(f"| {r['series']} | {r['port']} | {r['packets']} | "
                       f"{fmt(r.get('kicks_per_packet'), 4)} | "
                       f"{fmt(r.get('interrupts_per_packet'), 4)} | "
                       f"{fmt(r.get('wakeups_per_packet'), 4)} |")
    return out


def ratio(v, b):
    return v / b if v is not None and b else float("nan")


def plots(d, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(d) / "plots"
    out.mkdir(exist_ok=True)
    made = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        made.append(out / name)

    def rate_and_ratio(a, b, title, baseline, xlabel, legend_size=None):
        """Labels a pair of panels: Mpps received above, the ratio to
        `baseline` below, against a power of two."""
        a.set_ylabel("received Mpps")
        a.set_title(title)
        a.legend(fontsize=legend_size)
        b.set_ylabel(f"ratio to {baseline}")
        b.set_xlabel(xlabel)
        b.set_xscale("log", base=2)
        b.axhline(1, color="grey", lw=0.5)

    # Throughput against batch size (paper Figs 6/7, host to host).
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    base = curve(rows, "batch", BASELINE, "batch")
    for path in ("pipe", "vale", BASELINE):
        c = curve(rows, "batch", path, "batch")
        if c:
            a.plot(list(c), list(c.values()), "o-", label=LABELS[path])
            b.plot(list(c), [ratio(v, base.get(k)) for k, v in c.items()], "o-",
                   label=LABELS[path])
    rate_and_ratio(a, b, "Host to host: throughput against batch size", "AF_PACKET/veth",
                   "batch (packets per system call)")
    save(fig, "batch.png")

    # A fast sender against ring size (paper Fig 8).
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for path in ("pipe", "vale"):
        c = curve(rows, "ring", path, "slots")
        bat = {r["slots"]: r["batch"] for r in select(rows, "ring", path=path)}
        if c:
            a.plot(list(c), list(c.values()), "o-", label=LABELS[path])
            b.plot(list(c), [ratio(v, baseline_at(rows, bat.get(k))) for k, v in c.items()],
                   "o-", label=LABELS[path])
    rate_and_ratio(a, b, "Fast sender: throughput against ring size",
                   "AF_PACKET/veth\n(same batch)", "slots per ring (batch = min(slots, 256))")
    save(fig, "ring.png")

    # Round trips (paper Table 1, host to host).
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    names, p50, rel = [], [], []
    for path in ("pipe", "vale", BASELINE):
        for wait in ("blocking", "busy"):
            r = select(rows, "rtt", path=path, wait=wait)
            base_r = select(rows, "rtt", path=BASELINE, wait=wait)
            if r:
                names.append(f"{path}\n{wait}")
                p50.append(r[0].get("rtt_p50_us", 0))
                rel.append(ratio(r[0].get("rtt_p50_us"),
                                 base_r[0].get("rtt_p50_us") if base_r else None))
    a.bar(names, p50)
    a.set_ylabel("round trip, median µs")
    a.set_title("Round trips")
    b.bar(names, rel)
    b.axhline(1, color="grey", lw=0.5)
    b.set_ylabel("ratio to AF_PACKET/veth (same wait)")
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=8)
    save(fig, "rtt.png")

    # A passthrough attachment against batch size, with its notifications.
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(7, 9), sharex=True)
    pt = curve(rows, "pt_batch", "pt_pipe", "batch")
    if pt:
        a.plot(list(pt), list(pt.values()), "o-", label=LABELS["pt_pipe"])
        for path in ("pipe", BASELINE):
            cc = curve(rows, "batch", path, "batch")
            a.plot(list(cc), list(cc.values()), "o--", label=LABELS[path])
        b.plot(list(pt), [ratio(v, base.get(k)) for k, v in pt.items()], "o-")
        for key, label in (("kicks_per_packet", "kicks"), ("interrupts_per_packet", "interrupts")):
            cc = curve(rows, "pt_batch", "pt_pipe", "batch", key)
            c.plot(list(cc), [max(v, 1e-5) for v in cc.values()], "o-", label=label)
    a.set_ylabel("Mpps")
    a.set_title("Passthrough attachment (guests played in userspace)")
    a.legend(fontsize=8)
    b.set_ylabel("ratio to AF_PACKET/veth")
    b.axhline(1, color="grey", lw=0.5)
    c.set_ylabel("per packet")
    c.set_yscale("log")
    c.axhline(1, color="grey", lw=0.5)
    c.legend()
    c.set_xlabel("batch")
    c.set_xscale("log", base=2)
    save(fig, "pt_batch.png")

    # Notifications and CPU at offered rates.
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rr = select(rows, "rates")
    names = [r["rate"] for r in rr]
    x = range(len(rr))
    a.bar([i - 0.2 for i in x], [r["kicks_per_packet"] for r in rr], 0.4, label="kicks")
    a.bar([i + 0.2 for i in x], [r["interrupts_per_packet"] for r in rr], 0.4, label="interrupts")
    a.set_xticks(list(x), names)
    a.axhline(1, color="grey", lw=0.5)
    a.set_ylabel("per packet")
    a.set_xlabel("offered rate (packets/s)")
    a.set_title("Notifications per packet")
    a.legend()
    b.bar([i - 0.2 for i in x], [100 * r["worker_cpu"] for r in rr], 0.4, label="host worker")
    b.bar([i + 0.2 for i in x], [100 * r["guest_cpu"] for r in rr], 0.4, label="guests")
    b.set_xticks(list(x), names)
    b.set_ylabel("% of one CPU")
    b.set_xlabel("offered rate (packets/s)")
    b.set_title("CPU")
    b.legend()
    save(fig, "rates.png")

    # Guest placements against batch size (paper Figs 6/7), with host to host.
    if select(rows, "placement_batch"):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
        for col, path in enumerate(("pipe", "vale")):
            a, b = axes[0][col], axes[1][col]
            hh = curve(rows, "batch", path, "batch")
            a.plot(list(hh), list(hh.values()), "o--", color="grey", label="host → host")
            for (where, label), color in zip(PLACEMENTS.items(), ("tab:blue", "tab:orange")):
                c = curve(rows, "placement_batch", path, "batch", placement=where)
                a.plot(list(c), list(c.values()), "o-", color=color, label=label)
                b.plot(list(c), [ratio(v, hh.get(k)) for k, v in c.items()], "o-",
                       color=color, label=label)
            rate_and_ratio(a, b, LABELS[path], "host → host", "batch", legend_size=8)
        save(fig, "placements.png")

    # Guest to guest against batch size (paper Figs 6/7), virtio-net as baseline.
    if select(rows, "guest_batch"):
        fig, (a, b) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
        base = curve(rows, "guest_batch", GUEST_BASELINE, "batch")
        for path in ("pipe", "vale", GUEST_BASELINE):
            c = curve(rows, "guest_batch", path, "batch")
            a.plot(list(c), list(c.values()), "o-", label=LABELS[path])
            b.plot(list(c), [ratio(v, base.get(k)) for k, v in c.items()], "o-",
                   label=LABELS[path])
        rate_and_ratio(a, b, "Guest to guest: throughput against batch size", "virtio-net",
                       "batch (packets per system call)", legend_size=8)
        save(fig, "guest_batch.png")

    # Cascaded VMs bridging between pipes (paper Figs 10-11).
    cascade = cascade_curves(rows)
    if cascade:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for batch, m in cascade.items():
            vms = sorted(m)
            a.plot(vms, [m[v] for v in vms], "o-", label=f"batch {batch}")
            b.plot(vms, [ratio(m[v], m.get(0)) for v in vms], "o-", label=f"batch {batch}")
        a.set_ylabel("received Mpps")
        a.set_title("Cascade: host -> bridging VMs -> host")
        b.set_ylabel("ratio to the chain without VMs")
        b.axhline(1, color="grey", lw=0.5)
        for ax in (a, b):
            ax.set_xlabel("bridging VMs (ptbridge --copy between two pipe ends)")
            ax.set_xticks(list(range(3)))
            ax.legend(fontsize=8)
        save(fig, "cascade.png")
    return made


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    d = sys.argv[1]
    rows = load(d)
    write_tables(d, rows)
    (Path(d) / "tables.md").write_text(markdown(rows))
    made = [] if "--no-plots" in sys.argv else plots(d, rows)
    print(f"report: {len(rows)} results -> {d}/results.json, results.csv"
          + (f", {len(made)} plots in {d}/plots" if made else ""))


if __name__ == "__main__":
    main()
