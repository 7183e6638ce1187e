"""The repositories the Hub stand-in (hub_server.py) serves, built here from the week's offline data.

Layouts (the real repositories' file lists, as on huggingface.co):
  datasets/nyu-mll/glue, config `cola`: README.md whose YAML has `dataset_info` (features sentence:
    string, label: class_label 0 unacceptable / 1 acceptable, idx: int32) and `configs` (data_files
    cola/train-*, cola/validation-*, cola/test-*), and cola/{train,validation,test}-00000-of-00001.parquet,
    the Parquet conversion the Hub holds since 2024 (the GLUE card on huggingface.co lists these; the
    script glue.py is gone). The other GLUE configs are left out. Content: the bundled offline data
    (data/): train = the first 320 sentences of train.csv, test = its last 64 with label -1 as in
    real CoLA (its labels are not public), validation = the first 192 of validation.csv. Far smaller
    than CoLA's 8,551 / 1,043 / 1,063, so that a hub test trains a few steps, not a model.
  google/bert_uncased_L-2_H-128_A-2 (BERT-Tiny, google-research/bert's miniatures, converted by the
    Hugging Face team in 2020, main at 30b0a37): config.json with the 11 keys of Google's
    bert_config.json in their order and no `model_type` (copied verbatim in FedML's model-serving
    code; transformers 4 guessed "bert" from the name, transformers 5 refuses it: see
    source.base_config), vocab.txt (uncased WordPiece, 30,522
    entries, [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103), pytorch_model.bin and
    model.safetensors (BertForPreTraining's weights: encoder, pooler, the `cls.` pretraining heads),
    README.md, .gitattributes. No tokenizer.json, tokenizer_config.json or special_tokens_map.json:
    transformers builds the fast tokenizer from vocab.txt. The real repo's TensorFlow and Flax weights
    (tf_model.h5, flax_model.msgpack) are not served: no client here reads them. Content: the real
    config; weights randomly initialised from it (seed 0); vocab.txt has BERT's special tokens at their
    real ids, the bundled offline tokenizer's word pieces after them, and [unused] entries up to 30,522.
  google/electra-small-discriminator (ELECTRA-small, google-research/electra's released small model,
    ELECTRA-Small++ in the paper): the file list of the Hub API's `siblings` for commit 153f486
    (.gitattributes, README.md, config.json, flax_model.msgpack, pytorch_model.bin, tf_model.h5,
    tokenizer.json, tokenizer_config.json, vocab.txt; as saved in saranscript/huggingface-models,
    models/google/electra-small-discriminator/infos.json). So: PyTorch weights in pytorch_model.bin
    only (no model.safetensors: transformers reads the pickle), a fast tokenizer.json beside vocab.txt.
    config.json: ElectraConfig's keys for ELECTRA-small (transformers' ElectraConfig defaults, which
    its docstring says match this model: embedding 128, hidden 256, 12 layers, 4 heads, intermediate
    1,024), with model_type "electra" and architectures ["ElectraForPreTraining"] as the Hub API's
    `config` reports. tokenizer_config.json: do_lower_case true, model_max_length 512. Content:
    weights randomly initialised from that config (seed 0: 13.5M parameters, 54 MB as the real file);
    vocab.txt as BERT-Tiny's (ELECTRA uses BERT uncased's vocabulary, google-research/electra README);
    tokenizer.json is that vocab.txt as the `tokenizers` library's BertWordPieceTokenizer (BERT uncased's
    normalizer, pre-tokenizer and [CLS] ... [SEP] post-processing). Flax and TensorFlow weights are not
    served. The Hub API's `siblings` of today's main were not available here: if the real repository
    has gained a model.safetensors since, transformers reads that instead; both paths load the same.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

WEEK_DIR = Path(__file__).resolve().parents[2]
GLUE = "nyu-mll/glue"
BERT_TINY = "google/bert_uncased_L-2_H-128_A-2"
ELECTRA_SMALL = "google/electra-small-discriminator"
# The stand-in's CoLA is small on purpose: every hub test trains on it, ELECTRA-small included
# (12 layers), and the tests check the path, not the model's quality. Five training steps of 64.
TRAIN_ROWS = 320  # the first rows of the offline train.csv
TEST_ROWS = 64  # its last rows become the unlabelled test split
VALIDATION_ROWS = 192  # the first rows of the offline validation.csv
LFS_SUFFIXES = (".parquet", ".bin", ".safetensors")  # what .gitattributes sends to LFS on the real repos
# google/bert_uncased_L-2_H-128_A-2/config.json: Google's bert_config.json of the miniature, unchanged.
BERT_TINY_CONFIG = {
    "hidden_size": 128,
    "hidden_act": "gelu",
    "initializer_range": 0.02,
    "vocab_size": 30522,
    "hidden_dropout_prob": 0.1,
    "num_attention_heads": 2,
    "type_vocab_size": 2,
    "max_position_embeddings": 512,
    "num_hidden_layers": 2,
    "intermediate_size": 512,
    "attention_probs_dropout_prob": 0.1,
}
# google/electra-small-discriminator/config.json (see the module docstring for where each value comes from).
ELECTRA_SMALL_CONFIG = {
    "architectures": ["ElectraForPreTraining"],
    "attention_probs_dropout_prob": 0.1,
    "embedding_size": 128,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 256,
    "initializer_range": 0.02,
    "intermediate_size": 1024,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "electra",
    "num_attention_heads": 4,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 30522,
}
ELECTRA_TOKENIZER_CONFIG = {"do_lower_case": True, "model_max_length": 512}
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)


def git_blob_sha1(content: bytes) -> str:
    """The id git (and the Hub's `oid`) gives a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """One repository at one commit: its files, and which of them are stored with LFS."""

    kind: str  # "model" or "dataset"
    repo_id: str
    files: dict[str, bytes]
    card_data: dict = field(default_factory=dict)

    # Hashed once: every request needs them, and hashing 30 MB of weights per request would make the
    # stand-in answer too slowly for the 3-second probe on a busy machine.
    @functools.cached_property
    def entries(self) -> dict[str, dict]:
        """The tree / paths-info entry of each file."""
        entries = {}
        for path, content in self.files.items():
            item = {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": path}
            if path.endswith(LFS_SUFFIXES):
                item["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
            entries[path] = item
        return entries

    @functools.cached_property
    def sha(self) -> str:
        """The commit id: changes whenever a file does."""
        digest = hashlib.sha1(self.repo_id.encode())
        for path in sorted(self.files):
            digest.update(path.encode() + self.entries[path]["oid"].encode())
        return digest.hexdigest()

    def entry(self, path: str) -> dict:
        """The tree / paths-info entry of a file."""
        return dict(self.entries[path])

    def folders(self) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in self.files for i in range(1, p.count("/") + 1)}

    def listing(self, folder: str, recursive: bool) -> list[dict]:
        """Entries under `folder` ("" = the root), folders first, as the Hub lists them."""
        prefix = f"{folder}/" if folder else ""
        depth = prefix.count("/")
        folders = sorted(f for f in self.folders() if f.startswith(prefix) and (recursive or f.count("/") == depth))
        files = sorted(p for p in self.files if p.startswith(prefix) and (recursive or p.count("/") == depth))
        return [{"type": "directory", "oid": git_blob_sha1(f.encode()), "path": f} for f in folders] + [
            self.entry(p) for p in files
        ]

    def info(self) -> dict:
        return {
            "_id": self.sha[:24],
            "id": self.repo_id,
            "author": self.repo_id.split("/")[0],
            "sha": self.sha,
            "lastModified": "2024-01-30T10:00:00.000Z",
            "createdAt": "2022-03-02T23:29:22.000Z",
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": self.card_data,
            "siblings": [{"rfilename": path} for path in sorted(self.files)],
        }


# ------------------------------------------------------------------------------------------ nyu-mll/glue


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {
        "sentence": {"dtype": "string", "_type": "Value"},
        "label": {"names": ["unacceptable", "acceptable"], "_type": "ClassLabel"},
        "idx": {"dtype": "int32", "_type": "Value"},
    }
    schema = pa.schema(
        [("sentence", pa.string()), ("label", pa.int64()), ("idx", pa.int32())],
        # What `datasets` writes into the Parquet files it pushes, the Hub's conversion included.
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def glue_splits(data_dir: Path) -> dict[str, list[dict]]:
    """The stand-in's CoLA splits from the offline data; the test split's labels are -1, as in CoLA."""
    from source import read_split  # the week's own reader (the week folder is on sys.path in the tests)

    train = read_split("train", data_dir)
    test = [{**row, "label": -1, "idx": i} for i, row in enumerate(train[-TEST_ROWS:])]
    validation = read_split("validation", data_dir)[:VALIDATION_ROWS]
    return {"train": train[:TRAIN_ROWS], "validation": validation, "test": test}


def build_glue(data_dir: Path) -> Repo:
    """datasets/nyu-mll/glue with the `cola` config, in the real repository's layout."""
    splits = glue_splits(data_dir)
    files = {f"cola/{split}-00000-of-00001.parquet": _parquet(rows) for split, rows in splits.items()}
    card = {
        "pretty_name": "GLUE (General Language Understanding Evaluation benchmark)",
        "dataset_info": [
            {
                "config_name": "cola",
                "features": [
                    {"name": "sentence", "dtype": "string"},
                    {"name": "label", "dtype": {"class_label": {"names": {"0": "unacceptable", "1": "acceptable"}}}},
                    {"name": "idx", "dtype": "int32"},
                ],
                "splits": [
                    {"name": split, "num_bytes": sum(len(r["sentence"]) + 12 for r in rows), "num_examples": len(rows)}
                    for split, rows in splits.items()
                ],
                "download_size": sum(len(content) for content in files.values()),
            }
        ],
        "configs": [
            {
                "config_name": "cola",
                "data_files": [{"split": split, "path": f"cola/{split}-*"} for split in splits],
            }
        ],
    }
    files["README.md"] = _readme(card, "# Dataset Card for GLUE (test stand-in: config cola only)\n")
    files[".gitattributes"] = GITATTRIBUTES.encode()
    return Repo("dataset", GLUE, files, card)


def _readme(card: dict, body: str) -> bytes:
    # JSON is YAML: the card's metadata block parses the same way as the real card's YAML.
    return f"---\n{json.dumps(card, indent=1)}\n---\n\n{body}".encode()


# -------------------------------------------------------------------------- google/bert_uncased_L-2_H-128_A-2


def bert_vocab(size: int) -> list[str]:
    """A vocab.txt of `size` entries with BERT uncased's special ids and the offline tokenizer's word pieces."""
    tokenizer = json.loads((WEEK_DIR / "offline_model" / "tokenizer.json").read_text(encoding="utf-8"))
    specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    pieces = [t for t, _ in sorted(tokenizer["model"]["vocab"].items(), key=lambda kv: kv[1]) if t not in specials]
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + pieces
    vocab += [f"[unused{i}]" for i in range(99, 99 + size - len(vocab))]
    return vocab


def build_bert(repo_id: str, config: dict) -> Repo:
    """A BERT miniature in its real repository's layout, weights random from the real config."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(**config))
    # Like Google's converted checkpoints: every tensor stored, the tied decoder weight as its own copy.
    weights = {name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}
    safetensors = io.BytesIO()
    safetensors.write(_safetensors_bytes(weights, save_file))
    pickled = io.BytesIO()
    torch.save(weights, pickled)
    files = {
        "config.json": json.dumps(config, indent=2).encode(),
        "vocab.txt": "".join(f"{token}\n" for token in bert_vocab(config["vocab_size"])).encode(),
        "pytorch_model.bin": pickled.getvalue(),
        "model.safetensors": safetensors.getvalue(),
        ".gitattributes": GITATTRIBUTES.encode(),
    }
    card = {"language": "en", "license": "apache-2.0", "thumbnail": None}
    files["README.md"] = _readme(card, f"# {repo_id} (test stand-in: random weights from the real config)\n")
    return Repo("model", repo_id, files, card)


def _safetensors_bytes(weights: dict, save_file) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        save_file(weights, str(path), metadata={"format": "pt"})
        return path.read_bytes()


# ------------------------------------------------------------------------ google/electra-small-discriminator


def build_electra(repo_id: str, config: dict) -> Repo:
    """ELECTRA-small in its real repository's layout: weights random from the real config, pytorch_model.bin only."""
    import tempfile

    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import ElectraConfig, ElectraForPreTraining

    torch.manual_seed(0)
    model = ElectraForPreTraining(ElectraConfig(**config))
    pickled = io.BytesIO()
    torch.save({name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}, pickled)
    vocab = "".join(f"{token}\n" for token in bert_vocab(config["vocab_size"])).encode()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.txt").write_bytes(vocab)
        tokenizer = BertWordPieceTokenizer(str(Path(folder) / "vocab.txt"), lowercase=True)
        tokenizer.save(str(Path(folder) / "tokenizer.json"))
        tokenizer_json = (Path(folder) / "tokenizer.json").read_bytes()
    files = {
        "config.json": json.dumps(config, indent=2).encode(),
        "vocab.txt": vocab,
        "tokenizer.json": tokenizer_json,
        "tokenizer_config.json": json.dumps(ELECTRA_TOKENIZER_CONFIG).encode(),
        "pytorch_model.bin": pickled.getvalue(),
        ".gitattributes": GITATTRIBUTES.encode(),
    }
    card = {"language": "en", "license": "apache-2.0", "thumbnail": "https://huggingface.co/front/thumbnails/google.png"}
    files["README.md"] = _readme(card, f"# {repo_id} (test stand-in: random weights from the real config)\n")
    return Repo("model", repo_id, files, card)


# Every base model a week lets a learner select, with its real config.json.
MODELS = {ELECTRA_SMALL: ELECTRA_SMALL_CONFIG, BERT_TINY: BERT_TINY_CONFIG}


def build_model(repo_id: str, config: dict) -> Repo:
    """The repository of a base model in MODELS, in its own architecture's layout."""
    return (build_electra if config.get("model_type") == "electra" else build_bert)(repo_id, config)
