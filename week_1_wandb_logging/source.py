"""Where data and the base model come from: the Hugging Face Hub, or the offline bundle.

The source is always chosen explicitly (`--source` or the MLOPS_SOURCE variable):
  hub      CoLA (`nyu-mll/glue`, config `cola`) and `google/electra-small-discriminator`
  offline  the bundled dataset in data/ and the bundled small BERT (BERT-tiny's architecture) in offline_model/
  auto     probe the Hub for a few seconds and say loudly which one is used and why
There is never a silent fallback from one to the other.
"""

from __future__ import annotations

import csv
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from errors import CourseError

if TYPE_CHECKING:  # transformers is imported where it is used: reading the data needs only the standard library
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

WEEK_DIR = Path(__file__).resolve().parent
# MLOPS_OFFLINE_DATA points at another folder of train.csv/validation.csv (tests use it).
OFFLINE_DATA_DIR = Path(os.environ.get("MLOPS_OFFLINE_DATA", WEEK_DIR / "data"))
OFFLINE_MODEL_DIR = WEEK_DIR / "offline_model"
# Both folders are committed, made by bundle/ at the repository root: how a learner gets a broken one back.
RESTORE_DATA = "restore it with `git checkout -- data` or `make bundle` from the repository root"
RESTORE_MODEL = "restore it with `git checkout -- offline_model` or `make bundle` from the repository root"

HUB_DATASET = ("nyu-mll/glue", "cola")
# The default Hub base model: ELECTRA-small (14M parameters), CoLA dev MCC 57.0 in its authors' table
# (google-research/electra README, "Expected Results"; median over many fine-tuning seeds).
HUB_MODEL = "google/electra-small-discriminator"
# Still selectable (week 2 on: model=bert_tiny): 4M parameters and fast, but its authors' own table
# (google-research/bert README, GLUE test) gives BERT-Tiny 0.0 MCC on CoLA: it predicts one class.
BERT_TINY = "google/bert_uncased_L-2_H-128_A-2"
HUB_DEFAULT_ENDPOINT = "https://huggingface.co"
SOURCES = ("hub", "offline", "auto")
SPLITS = ("train", "validation")
DEFAULT_SOURCE = "offline"  # the embedded default: works on any machine, no network needed


def hub_probe_url() -> str:
    """The base model's page on the Hub the libraries use: HF_ENDPOINT (a mirror) or huggingface.co."""
    endpoint = os.environ.get("HF_ENDPOINT") or HUB_DEFAULT_ENDPOINT
    return f"{endpoint.rstrip('/')}/api/models/{HUB_MODEL}"


def hub_reachable(timeout_s: float = 3.0) -> tuple[bool, str]:
    """Return (reachable, reason) after at most `timeout_s` seconds of probing the Hub."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, "HF_HUB_OFFLINE=1 is set"
    url = hub_probe_url()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return True, f"{url} answered HTTP {response.status}"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        return False, f"{url} is unreachable ({error})"


def resolve_source(requested: str | None = None) -> str:
    """Turn 'hub', 'offline' or 'auto' (default: $MLOPS_SOURCE or 'offline') into hub/offline."""
    requested = (requested or os.environ.get("MLOPS_SOURCE") or DEFAULT_SOURCE).lower()
    if requested not in SOURCES:
        raise CourseError(f"unknown source {requested!r}: use one of {', '.join(SOURCES)}")
    if requested == "auto":
        reachable, reason = hub_reachable()
        requested = "hub" if reachable else "offline"
        log.warning("source=auto -> using %s data and model, because %s", requested, reason)
    elif requested == "hub" and os.environ.get("HF_HUB_OFFLINE") != "1":
        # Without this probe, an unreachable Hub costs about a minute of the libraries' retries and
        # a long log. HF_HUB_OFFLINE=1 skips it on purpose: the libraries then read their cache.
        reachable, reason = hub_reachable()
        if not reachable:
            raise CourseError(
                f"source=hub, but the Hugging Face Hub cannot be reached: {reason}. Check the connection "
                "(or HF_ENDPOINT), set HF_HUB_OFFLINE=1 to use what your Hugging Face cache already holds, "
                "or use --source offline for the bundled data and model"
            )
    if requested == "offline":
        # Make any library call that would reach the Hub fail at once instead of retrying.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return requested


def base_model_name(source: str) -> str:
    """The `from_pretrained` name or folder of the base model for a resolved source."""
    if source == "hub":
        return HUB_MODEL
    if not (OFFLINE_MODEL_DIR / "config.json").exists():
        raise CourseError(f"the bundled offline model is missing from {OFFLINE_MODEL_DIR}: {RESTORE_MODEL}")
    # Stored relative to the week so checkpoints keep working if the folder moves.
    return str(OFFLINE_MODEL_DIR.relative_to(WEEK_DIR))


def resolve_model_path(name_or_path: str) -> str:
    """A path relative to the week folder becomes absolute; a Hub name stays as it is."""
    candidate = WEEK_DIR / name_or_path
    return str(candidate) if candidate.exists() else name_or_path


def base_config(name_or_path: str, **kwargs: object) -> PretrainedConfig:
    """The base model's transformers config; `kwargs` (e.g. num_labels=2) override its values.

    Google's BERT miniatures on the Hub (google/bert_uncased_L-2_H-128_A-2 and its siblings) keep
    the config.json of their 2020 conversion, which has no `model_type` key. transformers 5 no longer
    guesses the type from the name, so AutoConfig refuses them ("Unrecognized model") and
    AutoTokenizer cannot build their tokenizer: such a config is read as the BERT it is."""
    from transformers import AutoConfig, BertConfig

    path = resolve_model_path(name_or_path)
    try:
        return AutoConfig.from_pretrained(path, **kwargs)
    except ValueError as error:
        if "model_type" not in str(error):
            raise
        return BertConfig.from_pretrained(path, **kwargs)


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The base model's tokenizer, from the bundled folder or the Hub (see base_config for why the config)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(name_or_path), config=base_config(name_or_path))


def read_split(split: str, data_dir: Path | None = None) -> list[dict]:
    """The rows of an offline split, in file order, as {"sentence": str, "label": int, "idx": int}.

    For code that needs the sentences themselves (tests, benchmarks, drift); training reads
    the files through `datasets` (data.py). Standard library only."""
    if split not in SPLITS:
        raise CourseError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    path = Path(data_dir or OFFLINE_DATA_DIR) / f"{split}.csv"
    if not path.is_file():
        raise CourseError(f"{path} is missing: {RESTORE_DATA}")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return [
                {"sentence": row["sentence"], "label": int(row["label"]), "idx": int(row["idx"])}
                for row in csv.DictReader(handle)
            ]
    except (UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as error:  # bytes, column, value
        raise CourseError(f"cannot read {path} ({type(error).__name__}: {error}): {RESTORE_DATA}") from error
