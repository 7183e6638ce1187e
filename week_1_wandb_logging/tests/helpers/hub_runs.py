"""Short training runs on the Hub stand-in (hub_server.py), shared by the test files of one pytest process.

    run = hub_training(tmp_root)             # train.py on the Hub source, one epoch, once per process
    run["done"].returncode, run["checkpoint"], run["env"]   # the command, its checkpoint, its environment

Training runs as a learner runs it, as a command: the Hub libraries read HF_ENDPOINT when they are
imported. Week 0-1 choose the source with `--source hub`, week 2 on with the Hydra override
`data.source=hub` and the base model with `model=<option>` (configs/model/<option>.yaml).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from helpers.hub_server import hub_env, shared_hub

WEEK_DIR = Path(__file__).resolve().parents[2]
HYDRA = (WEEK_DIR / "configs").is_dir()  # week 2 on: Hydra overrides instead of flags
DEFAULT_OPTION = "default"  # week 0-1 have one base model and no model option

_runs: dict[str, dict] = {}
_lock = threading.Lock()


def model_options() -> dict[str, str]:
    """Each base model a learner can select: {option: Hub name}, from configs/model/ (week 2 on)."""
    if not HYDRA:
        from source import HUB_MODEL

        return {DEFAULT_OPTION: HUB_MODEL}
    from omegaconf import OmegaConf

    options = sorted((WEEK_DIR / "configs" / "model").glob("*.yaml"))
    return {path.stem: OmegaConf.load(path).hub_name for path in options}


def default_option() -> str:
    """The model option train.py uses when none is given: configs/config.yaml's `model` default (week 2 on)."""
    if not HYDRA:
        return DEFAULT_OPTION
    from omegaconf import OmegaConf

    defaults = OmegaConf.to_container(OmegaConf.load(WEEK_DIR / "configs" / "config.yaml").defaults)
    return next(entry["model"] for entry in defaults if isinstance(entry, dict) and "model" in entry)


def train_args(source: str, tmp: Path, option: str = DEFAULT_OPTION) -> list[str]:
    """One short epoch on `source` (the test's time, not the model's quality), artifacts under `tmp`."""
    if HYDRA:
        model = [f"model={option}"] if option != DEFAULT_OPTION else []
        return [
            *model, f"data.source={source}", "training.max_epochs=1", "model.max_length=32", "logger=csv",
            f"paths.artifacts={tmp / 'artifacts'}", f"hydra.run.dir={tmp / 'run'}",
        ]  # fmt: skip
    args = ["--source", source, "--max-epochs", "1", "--max-length", "32", "--artifacts-dir", str(tmp / "artifacts")]
    if (WEEK_DIR / "wandb_logging.py").is_file():  # week 1: no W&B run in a test
        args += ["--wandb-mode", "disabled"]
    return args


def run(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """`python <args>` from the week folder, output captured."""
    return subprocess.run(
        [sys.executable, *args], cwd=WEEK_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def hub_training(tmp_root: Path, option: str | None = None) -> dict:
    """train.py on the Hub source with model `option` (default: train.py's), once per process, in an empty cache."""
    option = option or default_option()
    with _lock:
        if option not in _runs:
            tmp = tmp_root / f"hub_{option}"
            tmp.mkdir(parents=True, exist_ok=True)
            env = hub_env(os.environ, shared_hub(), tmp / "hf_home")
            done = run(["train.py", *train_args("hub", tmp, option)], env)
            checkpoint = tmp / "artifacts" / "checkpoints" / "best.ckpt"
            _runs[option] = {"done": done, "checkpoint": checkpoint, "env": env, "tmp": tmp}
        return _runs[option]
