"""`--source hub` and `--source auto` end to end, against a stand-in Hub on loopback.

The stand-in (tests/helpers/hub_server.py) serves nyu-mll/glue (config cola) and the base model in
their real repositories' layouts; the real clients reach it through HF_ENDPOINT only, each run with
an empty Hugging Face cache. Training and inference run as a learner runs them, as commands: the
Hub libraries read HF_ENDPOINT when they are imported. From week 2 on the source is chosen with the
Hydra override `data.source=hub`, before it with the flag `--source hub`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import pytest
import torch

from helpers.hub_repos import GLUE, MODELS, glue_splits
from helpers.hub_runs import hub_training, model_options, run
from helpers.hub_server import HubStandIn, closed_port, hub_env, shared_hub
from source import HUB_MODEL, resolve_source

WEEK_DIR = Path(__file__).resolve().parents[1]
SENTENCES = ["The boy is sitting on a bench.", "Boy the bench on sitting is."]


@pytest.fixture(scope="module")
def hub() -> HubStandIn:
    """The stand-in Hub, started once per pytest process (building its repositories takes seconds)."""
    return shared_hub()


@pytest.fixture(scope="module")
def hub_trained(hub: HubStandIn, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """train.py on the Hub source (one epoch), shared with the other test files of this process."""
    return hub_training(tmp_path_factory.getbasetemp())


def test_training_on_the_hub_source_downloads_cola_and_the_base_model(hub: HubStandIn, hub_trained: dict) -> None:
    done = hub_trained["done"]
    assert done.returncode == 0, done.stderr[-4000:]
    assert re.search(r"validation: accuracy=[\d.]+ mcc=", done.stdout), done.stdout[-2000:]
    hparams = torch.load(hub_trained["checkpoint"], map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hparams["model_name"] == HUB_MODEL  # fine-tuned from the Hub's model, not the bundled one
    downloads = [request for request in hub.requests if request.startswith("GET ") and "/resolve/" in request]
    parquet = "cola/train-00000-of-00001.parquet"
    assert any(r.startswith(f"GET /datasets/{GLUE}/resolve/") and r.endswith(parquet) for r in downloads)
    served = hub.repo("model", HUB_MODEL).files
    weights = "model.safetensors" if "model.safetensors" in served else "pytorch_model.bin"  # what the repo has
    tokenizer = "tokenizer.json" if "tokenizer.json" in served else "vocab.txt"  # the fast tokenizer's source
    for name in (weights, tokenizer):
        assert any(r.startswith(f"GET /{HUB_MODEL}/resolve/") and r.endswith(f"/{name}") for r in downloads), name
    assert hub.unknown == []  # every request was one the real Hub answers


def test_inference_loads_the_checkpoint_trained_on_the_hub_source(hub_trained: dict) -> None:
    assert hub_trained["done"].returncode == 0, "training on the Hub source failed (see the test above)"
    args = ["inference.py", "--checkpoint", str(hub_trained["checkpoint"]), *SENTENCES]
    online = run(args, hub_trained["env"])
    assert online.returncode == 0, online.stderr[-4000:]
    lines = online.stdout.strip().splitlines()
    assert len(lines) == 2 and all(re.search(r"acceptable \(\d\.\d{3}\)", line) for line in lines), online.stdout


def test_the_unlabelled_test_split_never_reaches_training_or_evaluation(hub: HubStandIn, tmp_path: Path) -> None:
    """CoLA's test split has label -1 (its labels are not public); only train and validation may be used."""
    code = (
        "import json\n"
        "from data import ColaDataModule\n"
        "from source import HUB_MODEL\n"
        "data = ColaDataModule(HUB_MODEL, 'hub', 64, 32)\n"
        "data.setup('fit')\n"
        "seen = {}\n"
        "for name, loader, rows in (('train', data.train_dataloader(), data.train_data),\n"
        "                           ('validation', data.val_dataloader(), data.val_data)):\n"
        "    labels = sorted({int(label) for batch in loader for label in batch['label']})\n"
        "    seen[name] = {'labels': labels, 'sentences': list(rows.with_format(None)['sentence'])}\n"
        "print(json.dumps(seen))\n"
    )
    done = run(["-c", code], hub_env(os.environ, hub, tmp_path / "hf_home"))
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    splits = glue_splits(WEEK_DIR / "data")
    test_sentences = {row["sentence"] for row in splits["test"]}
    for name in ("train", "validation"):
        assert seen[name]["labels"] == [0, 1], (name, seen[name]["labels"])  # no -1 among them
        assert not test_sentences & set(seen[name]["sentences"]), f"test sentences reached {name}"
        assert sorted(seen[name]["sentences"]) == sorted(row["sentence"] for row in splits[name])


def test_auto_picks_the_answering_hub_within_3_s_and_says_so(hub: HubStandIn, monkeypatch, caplog) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    with caplog.at_level(logging.INFO, logger="source"):
        start = time.monotonic()
        chosen = resolve_source("auto")
        elapsed = time.monotonic() - start
    assert chosen == "hub" and elapsed < 3.0, (chosen, elapsed)
    said = [record.getMessage() for record in caplog.records if record.name == "source"]
    assert len(said) == 1 and "source=auto -> using hub" in said[0] and hub.url in said[0], said


def test_auto_picks_offline_when_nothing_answers(monkeypatch, caplog) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with caplog.at_level(logging.INFO, logger="source"):
        start = time.monotonic()
        chosen = resolve_source("auto")
        elapsed = time.monotonic() - start
    assert chosen == "offline" and elapsed < 3.0, (chosen, elapsed)
    said = [record.getMessage() for record in caplog.records if record.name == "source"]
    assert len(said) == 1 and "source=auto -> using offline" in said[0] and "unreachable" in said[0], said


def test_every_base_model_a_learner_can_select_is_served_by_the_stand_in(hub: HubStandIn) -> None:
    """A new model option needs its real repository layout in tests/helpers/hub_repos.py (MODELS)."""
    for option, hub_name in model_options().items():
        assert hub_name in MODELS, f"model option {option}: {hub_name} is not in the Hub stand-in's MODELS"
        assert hub.repo("model", hub_name).files["config.json"]
