"""Build the offline stand-in for `google/bert_uncased_L-2_H-128_A-2`, bundled in each week's offline_model/.

Same architecture as the Hub model (2 layers, 128 hidden, 2 attention heads) and built the same
way, only much smaller: a WordPiece tokenizer trained on the bundled sentences, then masked
language modelling (guess the hidden word) on 40,000 grammatical sentences from the offline
data's grammar. Like BERT's pretraining on books, this teaches the model word classes and word
order before it ever sees a label; a randomly initialised model stays at chance on the offline
data. It is saved with `save_pretrained`, so training and inference load it through exactly the
`from_pretrained` code path they use for the Hub model.

The result is committed (2 MB), so nobody has to wait for it. From the repository root:

    python bundle/offline_model.py   # rebuild week_0_project_setup/offline_model/ (about 4 min on 2 CPU cores)
    make bundle                      # regenerate data and model, then carry them to every week
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tqdm import tqdm
from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, PreTrainedTokenizerFast

import offline_data

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 2000
SEED = 0
MODEL_DIR = offline_data.ROOT / "week_0_project_setup" / "offline_model"


class BundleError(Exception):
    """A problem the user can fix; `main` prints it as one line instead of a traceback."""


@dataclass(frozen=True)
class PretrainConfig:
    """How much masked-language-model pretraining the stand-in gets."""

    sentences: int = 40_000
    epochs: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    max_length: int = 32
    corpus_seed: int = 123  # another seed than the labelled data's, so the sentences differ


def read_sentences(csv_path: Path) -> list[str]:
    """Sentences of a CoLA-style CSV (column `sentence`)."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            return [row["sentence"] for row in csv.DictReader(handle)]
    except (OSError, KeyError, UnicodeDecodeError, csv.Error) as error:
        raise BundleError(
            f"cannot read sentences from {csv_path} ({error}): "
            "regenerate the offline data with `python bundle/offline_data.py`"
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


def pretraining_corpus(n: int, seed: int, exclude: set[str]) -> list[str]:
    """`n` unlabelled grammatical sentences from the offline grammar, none of them in `exclude`."""
    rng = random.Random(seed)
    corpus: list[str] = []
    seen = set(exclude)
    while len(corpus) < n:
        sentence = offline_data.random_sentence(rng).text()
        if sentence not in seen:
            seen.add(sentence)
            corpus.append(sentence)
    return corpus


def pretrain(model: BertForMaskedLM, tokenizer: PreTrainedTokenizerFast, corpus: list[str],
             config: PretrainConfig) -> list[float]:
    """Masked language modelling over `corpus`; returns the mean loss of each epoch."""
    encoded = tokenizer(corpus, truncation=True, max_length=config.max_length, padding="max_length")
    examples = [{"input_ids": ids, "attention_mask": mask}
                for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)]
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    loader = torch.utils.data.DataLoader(examples, batch_size=config.batch_size, shuffle=True,
                                         collate_fn=collate, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    total_steps = config.epochs * len(loader)
    warmup_steps = max(1, total_steps // 16)
    # Linear warm-up then linear decay: without warm-up, post-LayerNorm BERT often diverges.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup_steps) * max(0.0, 1 - step / total_steps)
    )
    model.train()
    losses = []
    for epoch in range(config.epochs):
        running = 0.0
        progress = tqdm(loader, desc=f"pretraining epoch {epoch + 1}/{config.epochs}", unit="batch")
        for batch in progress:
            loss = model(**batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item()
            progress.set_postfix(mlm_loss=f"{loss.item():.3f}")
        losses.append(running / len(loader))
    return losses


def build_offline_model(data_dir: Path, out_dir: Path, config: PretrainConfig | None = None) -> list[float]:
    """Train the tokenizer, pretrain the tiny BERT, save both to `out_dir`; returns the epoch losses."""
    config = config or PretrainConfig()
    log.info("building the offline BERT-tiny stand-in in %s", out_dir)
    labelled = read_sentences(data_dir / "train.csv") + read_sentences(data_dir / "validation.csv")
    tokenizer = train_tokenizer(read_sentences(data_dir / "train.csv"))
    bert_config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        max_position_embeddings=512,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(SEED)  # the same initial weights and masks on every machine
    model = BertForMaskedLM(bert_config)
    # The labelled sentences are left out, so pretraining never sees a validation sentence.
    corpus = pretraining_corpus(config.sentences, config.corpus_seed, exclude=set(labelled))
    losses = pretrain(model, tokenizer, corpus, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    return losses


def main(argv: list[str] | None = None) -> int:
    """Rebuild the model from the bundled data; returns the exit code (2 with a one-line error)."""
    parser = argparse.ArgumentParser(description="Rebuild the bundled offline BERT-tiny stand-in.")
    parser.add_argument("--data-dir", type=Path, default=offline_data.DATA_DIR, help="default: %(default)s")
    parser.add_argument("--out-dir", type=Path, default=MODEL_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        losses = build_offline_model(args.data_dir, args.out_dir)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"saved to {args.out_dir}; masked-LM loss per epoch: {', '.join(f'{x:.3f}' for x in losses)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
