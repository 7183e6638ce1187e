"""Draw an offline W&B run's curves to a PNG: what the dashboard would show, without a server.

    python -m support.plot_run  # the newest run under artifacts/wandb/
    python -m support.plot_run artifacts/wandb/offline-run-... --out run.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from errors import CourseError, run_cli  # noqa: E402
from source import WEEK_DIR  # noqa: E402
from support.wandb_run_reader import history, media_file  # noqa: E402

METRICS = ["loss", "acc", "f1", "mcc"]


def newest_run(wandb_dir: Path) -> Path:
    """The most recent offline run directory under `wandb_dir`."""
    runs = sorted(wandb_dir.glob("offline-run-*"))
    if not runs:
        raise CourseError(f"no offline W&B run in {wandb_dir}: train first with `python train.py`")
    return runs[-1]


def epoch_means(rows: list[dict], key: str) -> dict[int, float]:
    """The mean of `key` per epoch: one point per epoch, even for metrics logged every few steps."""
    values: dict[int, list[float]] = {}
    for row in rows:
        if key in row and "epoch" in row:
            values.setdefault(int(row["epoch"]), []).append(row[key])
    return {epoch: sum(v) / len(v) for epoch, v in sorted(values.items())}


def plot_run(run_dir: Path, out: Path) -> Path:
    """One panel per metric (train and validation per epoch) and the last confusion matrix."""
    rows = history(run_dir)
    fig, axes = plt.subplots(1, len(METRICS) + 1, figsize=(4 * (len(METRICS) + 1), 3.6), dpi=100)
    last_training_epoch = max(row["epoch"] for row in rows if "train/loss" in row)
    for ax, metric in zip(axes, METRICS, strict=False):
        for split, style in (("train", "o--"), ("val", "o-")):
            points = epoch_means(rows, f"{split}/{metric}")
            during = {epoch: value for epoch, value in points.items() if epoch <= last_training_epoch}
            if during:
                ax.plot(list(during), list(during.values()), style, label=split)
        # The run ends with one more validation of the best checkpoint: a star, not a new epoch.
        final = epoch_means(rows, f"val/{metric}").get(last_training_epoch + 1)
        if final is not None:
            ax.plot([last_training_epoch], [final], "*", markersize=14, color="tab:red", label="best checkpoint")
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
