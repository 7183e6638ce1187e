"""Build the offline stand-in for `google/bert_uncased_L-2_H-128_A-2`.

Same architecture (2 layers, 128 hidden, 2 attention heads), but randomly initialised, with
a WordPiece tokenizer trained on the bundled sentences. It is saved with `save_pretrained`,
so training and inference load it through exactly the `from_pretrained` code path they use
for the Hub model.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from errors import CourseError

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 2000
SEED = 0


def read_sentences(csv_path: Path) -> list[str]:
    """Sentences of a CoLA-style CSV (column `sentence`)."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            return [row["sentence"] for row in csv.DictReader(handle)]
    except (OSError, KeyError, UnicodeDecodeError, csv.Error) as error:
        raise CourseError(
            f"cannot read sentences from {csv_path} ({error}): "
            "regenerate the offline data with `python offline_data.py`"
        ) from error


def train_tokenizer(sentences: list[str]) -> PreTrainedTokenizerFast:
    """Train a lower-casing WordPiece tokenizer, the same kind BERT uncased uses."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def build_offline_model(train_csv: Path, out_dir: Path) -> Path:
    """Train the tokenizer, build the tiny BERT and save both to `out_dir`."""
    log.info("building the offline BERT-tiny stand-in in %s", out_dir)
    tokenizer = train_tokenizer(read_sentences(train_csv))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=512,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(SEED)  # the same initial weights on every machine
    model = BertForSequenceClassification(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return out_dir
