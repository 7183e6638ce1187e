"""The LightningModule: output shapes, training mode, and the source switch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import WEEK_DIR
from errors import CourseError
from model import LABELS, ColaModel
from source import base_model_name, resolve_source


@pytest.fixture(scope="module")
def model() -> ColaModel:
    return ColaModel(base_model_name("offline"))


def test_forward_gives_one_logit_per_class(model: ColaModel) -> None:
    input_ids = torch.randint(5, 100, (4, 12))
    logits = model(input_ids, torch.ones_like(input_ids))
    assert logits.shape == (4, len(LABELS))


def test_model_starts_in_train_mode(model: ColaModel) -> None:
    # transformers loads in eval mode; without model.train() dropout would stay off.
    assert model.model.training


def test_offline_base_model_is_bert_tiny(model: ColaModel) -> None:
    config = model.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (2, 128, 2)


def test_explicit_sources(monkeypatch) -> None:
    assert resolve_source("offline") == "offline"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_source("auto") == "offline"  # the probe answers at once when offline is forced
    with pytest.raises(CourseError, match="unknown source"):
        resolve_source("internet")


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_hub_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(CourseError, match="Hub cannot be reached.*--source offline"):
        resolve_source("hub")
    assert resolve_source("auto") == "offline"


def test_reachable_hub_and_offline_cache_are_used(monkeypatch) -> None:
    import http.server
    import threading

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    seen: list[str] = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/")
        assert resolve_source("hub") == "hub"
        assert seen == ["/api/models/google/electra-small-discriminator"]  # HF_ENDPOINT is honoured
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the cache only: no probe at all
        assert resolve_source("hub") == "hub" and len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_cli_unreachable_hub_is_one_line_without_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
    # As a learner asks for the Hub in this week: a flag in week 0-1, a Hydra override from week 2 on.
    choice = ["data.source=hub"] if (WEEK_DIR / "configs").is_dir() else ["--source", "hub"]
    done = subprocess.run(
        [sys.executable, "train.py", *choice], cwd=WEEK_DIR, capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode != 0
    assert "Hub cannot be reached" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_missing_bundled_model_names_the_fix(monkeypatch, tmp_path) -> None:
    import source

    monkeypatch.setattr(source, "OFFLINE_MODEL_DIR", tmp_path / "offline_model")
    with pytest.raises(CourseError, match="git checkout -- offline_model` or `make bundle"):
        source.base_model_name("offline")


def test_the_base_model_loads_without_a_load_report_and_with_a_new_head(capfd) -> None:
    from model import load_encoder

    encoder = load_encoder(base_model_name("offline"))
    assert encoder.classifier.out_features == len(LABELS)
    assert "LOAD REPORT" not in "".join(capfd.readouterr())


def test_a_checkpoint_that_is_not_a_bert_encoder_is_refused(tmp_path) -> None:
    from transformers import BertModel

    from model import load_encoder
    from source import resolve_model_path

    encoder = BertModel.from_pretrained(resolve_model_path(base_model_name("offline")))
    weights = {f"bert.{key}": value for key, value in encoder.state_dict().items()}
    weights["adapter.weight"] = torch.zeros(2, 2)  # a weight no BERT classifier has
    encoder.save_pretrained(tmp_path, state_dict=weights)
    with pytest.raises(
        CourseError, match=r"is not a BERT or ELECTRA encoder \(weights \['adapter.weight'\] are missing or left over\)"
    ):
        load_encoder(str(tmp_path))
