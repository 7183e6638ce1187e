"""Draw the course overview (data -> train -> version -> package -> serve -> monitor).

The picture in the root README is generated from this file:  python images/overview.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

STAGES = [
    ("data", "CoLA / offline set\nHF datasets", "week 0"),
    ("train", "Lightning + BERT-tiny\nW&B, Hydra", "weeks 0-2"),
    ("version", "DVC pipeline\nlocal / S3 remote", "week 3"),
    ("package", "ONNX Runtime\nDocker, CI", "weeks 4-6"),
    ("serve", "FastAPI, ECR\nAWS Lambda", "weeks 5-8"),
    ("monitor", "logs, metrics, drift\nlabelling, retraining", "week 9"),
]
COLOURS = ["#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD"]


def draw(out: Path) -> None:
    """Render the stages as boxes joined by arrows, with the retraining loop back to data."""
    fig, ax = plt.subplots(figsize=(13, 3.4), dpi=120)
    ax.set_xlim(0, len(STAGES) * 2.1)
    ax.set_ylim(-1.3, 2.2)
    ax.axis("off")
    for i, ((name, detail, weeks), colour) in enumerate(zip(STAGES, COLOURS, strict=True)):
        x = i * 2.1 + 0.15
        ax.add_patch(FancyBboxPatch((x, 0.2), 1.7, 1.5, boxstyle="round,pad=0.05", fc=colour, ec="none"))
        ax.text(x + 0.85, 1.35, name, ha="center", va="center", fontsize=14, color="white", weight="bold")
        ax.text(x + 0.85, 0.75, detail, ha="center", va="center", fontsize=9, color="white")
        ax.text(x + 0.85, 1.95, weeks, ha="center", va="center", fontsize=9, color="#333333")
        if i:
            ax.add_patch(FancyArrowPatch((x - 0.4, 0.95), (x - 0.05, 0.95), arrowstyle="-|>", mutation_scale=16))
    last_x = (len(STAGES) - 1) * 2.1 + 1.0
    ax.add_patch(
        FancyArrowPatch(
            (last_x, 0.15), (1.0, 0.15), connectionstyle="arc3,rad=-0.12", arrowstyle="-|>", mutation_scale=16,
            color="#777777", linestyle="--",
        )
    )
    ax.text(len(STAGES) * 1.05, -0.75, "drift detected -> label -> new data version -> retrain", ha="center",
            fontsize=9, color="#555555")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    target = Path(__file__).with_name("overview.png")
    draw(target)
    print(f"wrote {target}")
