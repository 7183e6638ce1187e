"""The classifier: a transformers encoder with a 2-class head, wrapped in a LightningModule."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryF1Score,
    BinaryMatthewsCorrCoef,
    BinaryPrecision,
    BinaryRecall,
)
from transformers import AutoModelForSequenceClassification, PreTrainedModel
from transformers.utils import logging as transformers_logging

from errors import CourseError
from source import HUB_MODEL, base_config, resolve_model_path

LABELS = ["unacceptable", "acceptable"]  # CoLA: 0 = unacceptable, 1 = acceptable
# A pretrained encoder has no classifier yet (and the offline BERT no pooler): those weights start new.
# Its pretraining head is left unused: BERT's `cls.*`, ELECTRA's replaced-token detector
# `discriminator_predictions.*`. Anything else missing or left over is a wrong model.
NEW_WEIGHTS = ("classifier.", "bert.pooler.")
UNUSED_WEIGHTS = ("cls.", "discriminator_predictions.")


# Lightning's advertising lines ("\N{ELECTRIC LIGHT BULB} Tip: install ...") are nothing a learner acts on.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: not record.getMessage().startswith("\N{ELECTRIC LIGHT BULB} Tip:")
)
# Lightning 2.6 calls an API torch 2.13 deprecates: a warning about Lightning's code, on every run.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated", category=Warning)


def load_encoder(model_name: str) -> PreTrainedModel:
    """The pretrained encoder under a new 2-class head; a model that is not a BERT or ELECTRA encoder is refused.

    transformers' LOAD REPORT of new and unused weights is expected here: checked, then kept quiet.
    """
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            resolve_model_path(model_name),
            config=base_config(model_name, num_labels=len(LABELS)),
            output_loading_info=True,
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
    surprising = [key for key in info["missing_keys"] if not key.startswith(NEW_WEIGHTS)]
    surprising += [key for key in info["unexpected_keys"] if not key.startswith(UNUSED_WEIGHTS)]
    if surprising:
        wrong = f"weights {sorted(surprising)[:5]} are missing or left over"
        raise CourseError(f"{model_name} is not a BERT or ELECTRA encoder ({wrong}): use one such as {HUB_MODEL}")
    return model


def classification_metrics(prefix: str) -> MetricCollection:
    """Accuracy, precision, recall, F1 and Matthews correlation, each named `<prefix>/<metric>`."""
    return MetricCollection(
        {
            "acc": BinaryAccuracy(),
            "precision": BinaryPrecision(),
            "recall": BinaryRecall(),
            "f1": BinaryF1Score(),
            "mcc": BinaryMatthewsCorrCoef(),
        },
        prefix=f"{prefix}/",
    )


class ColaModel(L.LightningModule):
    """Fine-tunes `model_name` on CoLA; reports accuracy, precision, recall, F1 and MCC."""

    def __init__(self, model_name: str, lr: float = 1e-3, max_length: int = 64) -> None:
        super().__init__()
        # Saved into the checkpoint, so inference tokenizes exactly as training did.
        self.save_hyperparameters()
        self.model = load_encoder(model_name)
        # transformers returns the model in eval mode; training needs dropout switched on.
        self.model.train()
        # Separate metric objects per split: their running state must never mix.
        self.train_metrics = classification_metrics("train")
        self.val_metrics = classification_metrics("val")
        # Probabilities and labels of the current validation epoch, for the W&B plots.
        self.val_probabilities: list[torch.Tensor] = []
        self.val_labels: list[torch.Tensor] = []

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, 2)."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, batch["label"])
        self.train_metrics.update(logits.argmax(dim=1), batch["label"])
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_probabilities.clear()
        self.val_labels.clear()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = torch.nn.functional.cross_entropy(logits, batch["label"])
        self.val_metrics.update(logits.argmax(dim=1), batch["label"])
        self.val_probabilities.append(torch.softmax(logits, dim=1).detach().cpu())
        self.val_labels.append(batch["label"].detach().cpu())
        # Under DDP (week 2) the epoch's loss is averaged over every process; the metrics sync themselves.
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        self.log_dict(self.val_metrics, prog_bar=True)

    def configure_optimizers(self) -> dict:
        """AdamW with BERT's fine-tuning schedule: linear warm-up over 10% of the steps, then linear decay.

        A constant learning rate high enough to learn quickly keeps knocking the pretrained
        encoder off course late in training; the decay lets the last epochs settle.
        """
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, total // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
