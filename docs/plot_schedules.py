"""Draws kldiv's KL weight schedules over 10,000 steps into ``docs/images/schedules.png``.

Run from anywhere, with matplotlib installed::

    python docs/plot_schedules.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from kldiv._schedules import (
    ConstantSchedule,
    CyclicalSchedule,
    LinearSchedule,
    SigmoidSchedule,
)

TOTAL = 10_000
OUTPUT = Path(__file__).resolve().parent / "images" / "schedules.png"

PANELS = [
    (
        "ConstantSchedule",
        [
            ("ConstantSchedule()  (plain ELBO)", ConstantSchedule()),
            ("ConstantSchedule(0.5)", ConstantSchedule(0.5)),
        ],
    ),
    (
        "LinearSchedule",
        [
            ("LinearSchedule(5000)", LinearSchedule(5_000)),
            ("LinearSchedule(3000, delay=2000)", LinearSchedule(3_000, delay=2_000)),
        ],
    ),
    (
        "CyclicalSchedule",
        [
            ("CyclicalSchedule(10000)  (M=4, R=0.5)", CyclicalSchedule(TOTAL)),
            (
                "CyclicalSchedule(10000, n_cycles=2, ratio=1.0)",
                CyclicalSchedule(TOTAL, n_cycles=2, ratio=1.0),
            ),
        ],
    ),
    (
        "SigmoidSchedule",
        [
            ("SigmoidSchedule(10000)  (k=10)", SigmoidSchedule(TOTAL)),
            ("SigmoidSchedule(10000, steepness=25)", SigmoidSchedule(TOTAL, steepness=25.0)),
        ],
    ),
]


def main() -> Path:
    """Draws the four panels and saves the figure; returns its path."""
    steps = range(TOTAL + 1)
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True, constrained_layout=True)
    for ax, (title, curves) in zip(axes.flat, PANELS, strict=True):
        for style, (label, schedule) in zip(("-", "--"), curves, strict=True):
            ax.plot(steps, [schedule(t) for t in steps], style, lw=2, label=label)
        ax.set_title(title)
        ax.set_ylim(-0.05, 1.42)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", fontsize=8, framealpha=0.95)
    for ax in axes[:, 0]:
        ax.set_ylabel("KL weight  schedule(step)")
    for ax in axes[1, :]:
        ax.set_xlabel("training step")
    fig.suptitle("kldiv KL weight schedules over 10,000 steps")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT, dpi=110)
    plt.close(fig)
    return OUTPUT


if __name__ == "__main__":
    print(main())
