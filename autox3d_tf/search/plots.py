"""Pictures of the searches (PNG files, matplotlib's Agg backend): for the probabilistic search the
distribution over time, the final distribution and the sampled architectures' accuracy against
their MACs; for the differentiable search the architecture weights over time and per edge, and
the derived cells drawn as graphs."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_arch_weights", "plot_genotype", "plot_history"]


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


def plot_arch_weights(history: dict, out_dir: str) -> list[str]:
    """PNG plots of an `ArchWeightsHistory` dict: each operation's mean weight over the edges of
    the normal and reduction cells over time, and the final weights per edge; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records, ops, edges = history["records"], history["ops"], history["edges"]
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(3, 2, figsize=(12, 9), gridspec_kw={"height_ratios": [2, 2, 1]})
    for col, kind in enumerate(("normal", "reduce")):
        weights = np.asarray([r[kind] for r in records])  # (records, edges, ops)
        ax = axes[0, col]
        ax.stackplot(steps, weights.mean(axis=1).T, labels=ops)
        ax.set_ylim(0, 1)
        ax.set_title(f"{kind} cells: mean weight over {len(edges)} edges")
        ax.set_xlabel("step")
        if col == 0:
            ax.legend(loc="upper left", fontsize=6, ncol=2)
        ax = axes[1, col]
        image = ax.imshow(weights[-1].T, aspect="auto", vmin=0, vmax=1, cmap="viridis")
        ax.set_yticks(range(len(ops)), ops, fontsize=7)
        ax.set_xticks(range(len(edges)), [f"{i}->{n + 2}" for n, i in edges], fontsize=6, rotation=90)
        ax.set_title(f"{kind} cells: final weights per edge (input -> node)")
        fig.colorbar(image, ax=ax)
    ax = axes[2, 0]
    ax.plot(steps, [r["expected_gmacs"] for r in records])
    ax.set_ylabel("expected GMACs")
    ax.set_xlabel("step")
    axes[2, 1].axis("off")
    fig.tight_layout()
    path = os.path.join(out_dir, "arch_weights.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def plot_genotype(genotype: dict, path: str) -> str:
    """The two cells of a genotype (``Genotype.to_dict()``) drawn as graphs: inputs c_{k-2},
    c_{k-1}, the intermediate nodes, the output, and each chosen edge labelled with its operation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, kind in zip(axes, ("normal", "reduce")):
        pairs = genotype[kind]
        nodes = len(pairs) // 2
        pos = {0: (0.0, 0.75), 1: (0.0, 0.25)}
        for j in range(nodes):
            pos[2 + j] = (1.0 + j, 0.9 - 0.8 * j / max(nodes - 1, 1))
        pos["out"] = (nodes + 1.0, 0.5)
        names = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"} | {2 + j: str(j) for j in range(nodes)}
        for k, (op, index) in enumerate(pairs):
            a, b = pos[index], pos[2 + k // 2]
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2))
            ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.02 * (1 if k % 2 else -1), op, fontsize=7,
                    ha="center", color="tab:red")
        for j in range(nodes):
            ax.annotate("", xy=pos["out"], xytext=pos[2 + j], arrowprops=dict(arrowstyle="->", color="gray", lw=0.8))
        for key, (px, py) in pos.items():
            ax.text(px, py, names[key], ha="center", va="center", fontsize=9,
                    bbox=dict(boxstyle="round", fc="lightyellow" if key in (0, 1, "out") else "lightblue"))
        ax.set_xlim(-0.5, nodes + 1.5)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(f"{kind} cell")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
