"""CoLA as a LightningDataModule: load, tokenize, and batch the sentences."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch
import torch.distributed as dist
from datasets import Dataset, DatasetDict, load_dataset
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, DistributedSampler

from errors import CourseError
from source import HUB_DATASET, OFFLINE_DATA_DIR, RESTORE_DATA, load_tokenizer

COLUMNS = ["input_ids", "attention_mask", "label"]


def load_cola(source: str) -> DatasetDict:
    """CoLA's train and validation splits (columns: sentence, label, idx)."""
    if source == "hub":
        return load_dataset(*HUB_DATASET)
    files = {split: OFFLINE_DATA_DIR / f"{split}.csv" for split in ("train", "validation")}
    for path in files.values():
        if not path.is_file():
            raise CourseError(f"{path} is missing: {RESTORE_DATA}")
    try:
        dataset = load_dataset("csv", data_files={k: str(v) for k, v in files.items()})
    except Exception as error:  # datasets raises several types for a broken CSV
        raise CourseError(
            f"cannot read the offline data in {OFFLINE_DATA_DIR} ({type(error).__name__}: {error}): {RESTORE_DATA}"
        ) from error
    missing = {"sentence", "label"} - set(dataset["train"].column_names)
    if missing:
        raise CourseError(f"{files['train']} lacks the column(s) {sorted(missing)}: {RESTORE_DATA}")
    return dataset


class ValidationShards(DistributedSampler):
    """With several processes (DDP, week 2): each validates one contiguous block of rows, none twice.

    Lightning's default DistributedSampler repeats rows so every process gets as many, and the
    metrics would count those rows twice; contiguous blocks also keep the rows in order when the
    processes' predictions are gathered. Validation runs without gradients, so the processes may
    differ by one batch.
    """

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset, shuffle=False)  # rank and world size from the process group
        self.start = self.rank * len(dataset) // self.num_replicas
        self.stop = (self.rank + 1) * len(dataset) // self.num_replicas

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


class ColaDataModule(L.LightningDataModule):
    """Tokenized CoLA batches of `input_ids`, `attention_mask` and `label`, each padded to its longest sentence."""

    def __init__(
        self,
        model_name: str,
        source: str = "offline",
        batch_size: int = 64,
        max_length: int = 64,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.source = source
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = load_tokenizer(model_name)
        self.train_data = None
        self.val_data = None

    def tokenize(self, batch: dict) -> dict:
        """Truncate every sentence to at most `max_length` tokens; padding waits for the batch."""
        return self.tokenizer(batch["sentence"], truncation=True, max_length=self.max_length)

    def collate(self, rows: list[dict]) -> dict:
        """Pad a batch to its longest sentence only (dynamic padding): most sentences are far
        shorter than `max_length`, and every padding token costs as much compute as a word."""
        pad_id = self.tokenizer.pad_token_id
        return {
            "input_ids": pad_sequence([r["input_ids"] for r in rows], batch_first=True, padding_value=pad_id),
            "attention_mask": pad_sequence([r["attention_mask"] for r in rows], batch_first=True),
            "label": torch.stack([r["label"] for r in rows]),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.train_data is not None:
            return
        cola = load_cola(self.source)
        self.train_data = cola["train"].map(self.tokenize, batched=True)
        self.train_data.set_format(type="torch", columns=COLUMNS)
        self.val_data = cola["validation"].map(self.tokenize, batched=True)
        self.val_data.set_format(type="torch", columns=COLUMNS)

    def train_dataloader(self) -> DataLoader:
        # A seeded generator keeps the shuffling order the same on every run.
        generator = torch.Generator().manual_seed(0)
        return DataLoader(self.train_data, self.batch_size, shuffle=True, generator=generator, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        # One process sees every row in order; under DDP each sees its own block (Lightning keeps it).
        sampler = ValidationShards(self.val_data) if dist.is_available() and dist.is_initialized() else None
        return DataLoader(self.val_data, self.batch_size, sampler=sampler, collate_fn=self.collate)
