"""Draw an offline W&B run's curves to a PNG: what the dashboard would show, without a server.

    python plot_run.py                          # the newest run under artifacts/wandb/
    python plot_run.py artifacts/wandb/offline-run-... --out run.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from errors import CourseError, run_cli  # noqa: E402
from source import WEEK_DIR  # noqa: E402
from wandb_run_reader import history, media_file  # noqa: E402

METRICS = ["loss", "acc", "f1", "mcc"]


def newest_run(wandb_dir: Path) -> Path:
    """The most recent offline run directory under `wandb_dir`."""
    runs = sorted(wandb_dir.glob("offline-run-*"))
    if not runs:
        raise CourseError(f"no offline W&B run in {wandb_dir}: train first with `python train.py`")
    return runs[-1]


def plot_run(run_dir: Path, out: Path) -> Path:
    """One panel per metric (train and validation per epoch) and the last confusion matrix."""
    rows = history(run_dir)
    fig, axes = plt.subplots(1, len(METRICS) + 1, figsize=(4 * (len(METRICS) + 1), 3.6), dpi=100)
    for ax, metric in zip(axes, METRICS, strict=False):
        for split, style in (("train", "o--"), ("val", "o-")):
            points = [(row["epoch"], row[f"{split}/{metric}"]) for row in rows
                      if f"{split}/{metric}" in row and "epoch" in row]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=split)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.legend()
    images = [row["val/confusion_matrix"] for row in rows if "val/confusion_matrix" in row]
    axes[-1].axis("off")
    if images:
        axes[-1].imshow(plt.imread(media_file(run_dir, images[-1])))
        axes[-1].set_title("val/confusion_matrix (last)")
    fig.suptitle(f"W&B run {run_dir.name}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("run_dir", type=Path, nargs="?", help="default: the newest run in artifacts/wandb/")
    parser.add_argument("--out", type=Path, default=WEEK_DIR / "artifacts" / "run.png")
    args = parser.parse_args()
    run_dir = args.run_dir or newest_run(WEEK_DIR / "artifacts" / "wandb")
    print(f"wrote {plot_run(run_dir, args.out)}")


if __name__ == "__main__":
    run_cli(main)
