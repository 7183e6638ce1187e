"""The evaluate stage on a checkpoint trained on the Hub source (tests/helpers/hub_server.py).

The pipeline's own stages stay offline (dvc.yaml); a learner who trained with `data.source=hub`
scores that checkpoint with evaluate.py on CoLA's labelled validation split, as here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from helpers.hub_repos import glue_splits
from helpers.hub_runs import WEEK_DIR, hub_training, run


def test_evaluate_scores_the_hub_checkpoint_on_the_validation_split(tmp_path_factory, tmp_path: Path) -> None:
    trained = hub_training(tmp_path_factory.getbasetemp())
    assert trained["done"].returncode == 0, trained["done"].stderr[-4000:]
    validation = glue_splits(WEEK_DIR / "data")["validation"]
    data = tmp_path / "validation.csv"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence", "label", "idx"])
        writer.writeheader()
        writer.writerows(validation)
    out = tmp_path / "metrics.json"
    done = run(
        ["evaluate.py", "--checkpoint", str(trained["checkpoint"]), "--data", str(data), "--out", str(out)],
        trained["env"],
    )
    assert done.returncode == 0, done.stderr[-4000:]
    metrics = json.loads(out.read_text())
    assert metrics["n_validation"] == len(validation)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and -1.0 <= metrics["mcc"] <= 1.0
