#!/usr/bin/env python3
"""Plots of a `perf veth` results directory: delivered vs offered rate per
path (one PNG per placement, 64-byte UDP trials of the binary search and the
2x overload), and latency percentiles at 50 % of each path's lossless rate."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1]
r = json.load(open(f"{out}/results.json"))
paths = ["xdpvs-fullnat", "xdpvs-nat", "xdpvs-dr", "xdpvs-tun", "nft-dnat", "kernel-fwd", "xdp-redirect"]

for pl in ["A", "B"]:
    fig, ax = plt.subplots(figsize=(9, 6))
    for p in paths:
        pts = sorted(
            (t["offered_pps"] if t["offered_pps"] < 3_000_000 else t["sent"] / t["seconds"], t["delivered"] / t["seconds"])
            for t in r["trials"]
            if t["placement"] == pl and t["path"] == p and t["frame"] in ("udp64", "overload")
        )
        if pts:
            ax.plot([x / 1e3 for x, _ in pts], [y / 1e3 for _, y in pts], marker="o", label=p)
    ax.set_xlabel("offered (kpps, 64-byte UDP)")
    ax.set_ylabel("delivered (kpps)")
    ax.set_title(f"Delivered vs offered, placement {pl}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.savefig(f"{out}/delivered_vs_offered_{pl}.png", dpi=100)
    plt.close(fig)

fig, ax = plt.subplots(figsize=(10, 6))
width = 0.12
labels = []
for i, p in enumerate(paths):
    for j, pl in enumerate(["A", "B"]):
        x = [q for q in r["paths"] if q["path"] == p and q["placement"] == pl]
        if not x:
            continue
        lat = x[0]["latency_us"]
        labels.append(f"{p} {pl}")
        k = len(labels) - 1
        for n, (q, c) in enumerate([("p50", "tab:blue"), ("p99", "tab:orange"), ("p999", "tab:red")]):
            ax.bar(k + (n - 1) * width, lat[q], width, color=c, label=q if k == 0 else None)
ax.set_xticks(range(len(labels)))
ax.set_xticklabels(labels, rotation=45, ha="right")
ax.set_ylabel("one-way latency (us)")
ax.set_yscale("log")
ax.set_title("Latency at 50 % of the lossless rate")
ax.legend()
fig.tight_layout()
fig.savefig(f"{out}/latency.png", dpi=100)
plt.close(fig)
