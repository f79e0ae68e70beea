"""Pictures of a probabilistic search: the distribution over time, the final distribution, and the
sampled architectures' accuracy against their MACs (PNG files, matplotlib's Agg backend)."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_history"]


def plot_history(history: dict, out_dir: str) -> list[str]:
    """PNG plots of a `DistributionHistory` dict; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records, decisions = history["records"], history["decisions"]
    steps = [r["step"] for r in records]
    kinds = [k for k in ("width", "type", "expansion", "attention") if any(d["kind"] == k for d in decisions)]
    written = []

    fig, axes = plt.subplots(1 + len(kinds), 1, figsize=(8, 2.6 * (1 + len(kinds))), sharex=True)
    ax = axes[0]
    ax.plot(steps, [r["expected_gmacs"] for r in records], label="expected GMACs")
    ax.plot(steps, [r["argmax_gmacs"] for r in records], label="most probable arch GMACs")
    ax.set_ylabel("GMACs")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["entropy"] for r in records], "k--", label="entropy")
    ax2.set_ylabel("entropy (nats)")
    ax.legend(loc="upper left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    for ax, kind in zip(axes[1:], kinds):
        names = [d["name"] for d in decisions if d["kind"] == kind]
        labels = max((d["candidates"] for d in decisions if d["kind"] == kind), key=len)
        size = len(labels)
        mean = np.zeros((len(records), size))
        for j, r in enumerate(records):
            for n in names:
                p = r["probabilities"][n]
                mean[j, : len(p)] += np.asarray(p) / len(names)
        tags = labels
        if kind == "width":
            tags = [f"width option {i}" for i in range(size)]
        ax.stackplot(steps, mean.T, labels=tags)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"P({kind})\nmean of {len(names)}")
        ax.legend(loc="upper left", fontsize=6, ncol=3)
    axes[-1].set_xlabel("step")
    fig.suptitle("architecture distribution over the search")
    fig.tight_layout()
    path = os.path.join(out_dir, "distribution.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    final = records[-1]["probabilities"]
    size = max(len(d["candidates"]) for d in decisions)
    grid = np.full((len(decisions), size), np.nan)
    for i, d in enumerate(decisions):
        grid[i, : len(final[d["name"]])] = final[d["name"]]
    fig, ax = plt.subplots(figsize=(6, max(3, 0.16 * len(decisions))))
    im = ax.imshow(grid, aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_yticks(range(len(decisions)))
    ax.set_yticklabels([d["name"] for d in decisions], fontsize=5)
    ax.set_xlabel("candidate index")
    fig.colorbar(im, ax=ax, label="probability")
    ax.set_title("final distribution")
    fig.tight_layout()
    path = os.path.join(out_dir, "distribution_final.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    samples = history.get("samples", [])
    if samples:
        fig, ax = plt.subplots(figsize=(6, 4))
        sc = ax.scatter([s["gmacs"] for s in samples], [s["accuracy"] for s in samples],
                        c=[s["step"] for s in samples], s=8, cmap="plasma")
        fig.colorbar(sc, ax=ax, label="step")
        ax.set_xlabel("GMACs of the sampled architecture")
        ax.set_ylabel("train-batch accuracy")
        ax.set_title("sampled architectures: accuracy against MACs")
        fig.tight_layout()
        path = os.path.join(out_dir, "macs_accuracy.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
