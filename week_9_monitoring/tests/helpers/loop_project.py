"""The week as the retraining tests start it: a throwaway git+DVC project with the first model made."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers.dvc_project import Project

# The first production model is a deliberately weak one-epoch run on v1 (MCC about 0.09); a model
# retrained on v3 for two epochs gets about 0.3, a gap far wider than another machine's arithmetic
# could move, so promotion and refusal cannot flip. Longer runs would only cost time.
FIRST_RUN = {"train.max_epochs": "1", "train.max_length": "32"}
RETRAINING = {"train.max_epochs": "2"}


def first_model_project(root: Path) -> Project:
    """The week in `root` with data v1 reproduced (`dvc repro`) and committed; nothing promoted yet."""
    project = Project(root)
    # As the repository's .gitignore does: the local model registry (mlruns/) and the champion's cache
    # (production/) live outside git, so checking out an old commit never changes what is in production.
    (project.week / ".gitignore").write_text("production/\nmlruns/\n")
    without_behaviour_thresholds(project.week)
    project.set_params(**FIRST_RUN)
    project.dvc("repro")
    project.commit("data v1 and its model")
    return project


def without_behaviour_thresholds(week: Path) -> None:
    """Behaviour pass rates of 0 in the project's monitoring/gate.yaml: the loop's models are deliberately
    weak (one or two epochs, to keep these tests fast) and would fail the gate's behaviour tests, which
    tests/test_gate.py tests on trained models. The data checks stay as committed; every test still runs."""
    path = week / "monitoring" / "gate.yaml"
    kinds = "mft_acceptable|mft_unacceptable|invariance|directional"
    path.write_text(re.sub(rf"^(\s+(?:{kinds}):) [0-9.]+", r"\1 0.0", path.read_text(), flags=re.MULTILINE))


def record(week: Path) -> dict:
    """production/onnx/registered_model.json: the champion's record in its cached copy."""
    return json.loads((week / "production" / "onnx" / "registered_model.json").read_text())


def production_listing(week: Path) -> list[str]:
    """What production/ holds, by name: after a finished fetch, exactly onnx (no .incoming or .previous)."""
    return sorted(path.name for path in (week / "production").iterdir())
