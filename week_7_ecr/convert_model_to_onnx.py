"""Export the trained classifier to ONNX, plus an int8 dynamic-quantized copy, into one folder.

    python convert_model_to_onnx.py                      # artifacts/checkpoints/best.ckpt -> artifacts/onnx/
    python convert_model_to_onnx.py --checkpoint CKPT --out-dir DIR

The folder is everything inference_onnx.py needs, and nothing from PyTorch:
  model.onnx         fp32 graph, inputs input_ids + attention_mask (int64, batch x sequence), output logits
  model.int8.onnx    the same graph with int8 weights (onnxruntime dynamic quantization)
  tokenizer.json     the tokenizer (plus tokenizer_config.json), as training used it
  model_config.json  labels, max_length, opset, the source checkpoint and the base model
The output paths depend only on --out-dir, so the script can run as a DVC stage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from transformers.utils import logging as transformers_logging

from config import load_saved_config
from errors import CourseError, run_cli
from inference_onnx import (
    CONFIG_NAME,
    EXPORT_DIR,
    INPUT_NAMES,
    MODEL_FILES,
    OUTPUT_NAME,
    make_session,
    softmax,
)
from model import ColaModel
from source import WEEK_DIR, load_tokenizer

log = logging.getLogger("convert")

CHECKPOINT = WEEK_DIR / "artifacts" / "checkpoints" / "best.ckpt"  # where train.py saves the best model
# The exporter's own default in torch 2.13 (torch.onnx._constants.ONNX_DEFAULT_OPSET); pinned so the
# graph does not change when torch does. Opset 20 has a native Gelu op, which onnxruntime fuses.
OPSET = 20
# Two sentences of different lengths: the example batch must have batch > 1 and sequence > 1, or
# torch.export specializes those axes to the constants 0/1 and they can no longer be dynamic.
EXAMPLE_SENTENCES = ["The dog sleeps.", "Leo helped that child near many parks again yesterday afternoon."]
PARITY_TOLERANCE = 1e-4  # max |probability difference| PyTorch vs ONNX Runtime fp32


def file_mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_classifier(checkpoint: Path) -> ColaModel:
    """The trained LightningModule in eval mode on the CPU."""
    if not checkpoint.is_file():
        raise CourseError(f"no trained model at {checkpoint}: run `python train.py` first, or pass --checkpoint PATH")
    # The base model's fresh classifier head is reported as "newly initialized" before the
    # checkpoint's trained weights replace it; that report would only mislead here.
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    model = ColaModel.load_from_checkpoint(checkpoint, map_location="cpu")
    return model.eval()  # dropout off: the exported graph must be the inference graph


def export_onnx(model: ColaModel, example: dict[str, torch.Tensor], path: Path, opset: int = OPSET) -> None:
    """torch.export-based (dynamo) ONNX export with dynamic batch and sequence axes."""
    axes = {0: "batch", 1: "sequence"}
    # The dynamo exporter's chatter is not actionable for a learner: progress lines, a notice that
    # torchvision's ops are skipped, and a note that both inputs share the axis names (intended).
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape constraints")
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)", category=FutureWarning)
        program = torch.onnx.export(
            model,
            (example["input_ids"], example["attention_mask"]),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=True,  # the default since torch 2.9; said explicitly because the lesson is about it
            dynamic_shapes={name: axes for name in INPUT_NAMES},
            verbose=False,
        )
    # One self-contained file: the weights (~2 MB) are far below protobuf's 2 GB limit, and a
    # separate model.onnx.data file would be one more thing to copy and to forget.
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path), full_check=True)


def fuse_for_onnx_runtime(path: Path) -> dict[str, int]:
    """Rewrite the graph in place with ONNX Runtime's fused transformer kernels; returns the fusion counts.

    onnxscript's rewriter recognises the exported attention, LayerNorm and Gelu subgraphs and
    replaces each with one com.microsoft op (Attention, SkipLayerNormalization, BiasGelu), which
    ONNX Runtime runs as a single kernel. The result only runs on ONNX Runtime, which is what we
    serve with; `--portable` skips this step and keeps standard ONNX ops only.
    """
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    model = ir.load(str(path))
    _, counts = optimize_for_ort(model)
    ir.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return {name: count for name, count in counts.items() if count}


def _ancestor_inputs(graph: onnx.GraphProto, name: str) -> set[str]:
    """The graph inputs whose values the value `name` is computed from (sizes taken by Shape do not count)."""
    producers = {output: node for node in graph.node for output in node.output}
    graph_inputs = {value.name for value in graph.input}
    found: set[str] = set()
    pending, seen = [name], set()
    while pending:
        value = pending.pop()
        if value in seen or not value:
            continue
        seen.add(value)
        if value in graph_inputs:
            found.add(value)
        elif value in producers and producers[value].op_type not in ("Shape", "Size"):
            pending.extend(producers[value].input)  # a Shape reads only the size of its input, not its values
    return found


def prepare_attention_for_quantization(path: Path) -> int:
    """Rewrite the fused Attention nodes so that the quantizer keeps all they do; returns how many.

    Two things the quantizer would otherwise get wrong, both fixed in place in the fp32 copy that
    is about to be quantized (the shipped model.onnx is left as exported):

    1. The padding mask. The exporter hands each Attention its mask as an additive bias (input 5,
       `attention_bias`: 0 for a word, a huge negative number for padding). onnxruntime's quantizer
       builds QAttention from inputs 0-3 only, so that bias is silently dropped and the int8 model
       attends to the padding of a batch: a sentence gets another answer when it is batched with a
       longer one (-4 points of accuracy on the default model). The same mask as a 2-D 0/1
       `mask_index` (input 3) is carried over, and both kernels read it the same way.
    2. `qkv_hidden_sizes`. The attribute only matters when Q, K and V differ in size; in BERT they
       never do, but the quantizer leaves any Attention that carries it in fp32, so it is removed.
    """
    model = onnx.load(str(path))
    graph = model.graph
    mask_name = "attention_mask_int32"
    changed = 0
    for node in graph.node:
        if node.op_type != "Attention":
            continue
        for attribute in list(node.attribute):
            if attribute.name == "qkv_hidden_sizes" and len(set(attribute.ints)) == 1:
                node.attribute.remove(attribute)
        inputs = list(node.input) + [""] * (6 - len(node.input))
        if inputs[5]:
            sources = _ancestor_inputs(graph, inputs[5])
            if sources != {"attention_mask"}:
                # Anything else in the bias (e.g. relative positions) would be lost: refuse, never drop it.
                raise CourseError(
                    f"{node.name}: its attention bias is computed from {sorted(sources)}, not only the padding "
                    "mask, so it cannot be quantized as QAttention: export with --portable"
                )
            inputs[3], inputs[5] = mask_name, ""
            while inputs and not inputs[-1]:
                inputs.pop()
            del node.input[:]
            node.input.extend(inputs)
        changed += 1
    if any(mask_name in node.input for node in graph.node):
        cast = onnx.helper.make_node(
            "Cast", ["attention_mask"], [mask_name], to=onnx.TensorProto.INT32, name="attention_mask_to_int32"
        )
        graph.node.insert(0, cast)
        _drop_unused_nodes(graph)  # the bias subgraph now feeds nothing
    onnx.save(model, str(path))
    return changed


def _drop_unused_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes, then initializers, whose outputs nothing reads."""
    while True:
        used = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
        dead = [node for node in graph.node if not any(output in used for output in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    for initializer in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(initializer)


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic quantization: int8 weights stored, activations quantized on the fly per batch.

    Weights are quantized per output channel with a 7-bit range (`reduce_range`). Without VNNI
    (AVX2 laptops, AVX-512 before Ice Lake), ONNX Runtime's u8 x s8 kernel adds pairs of
    products into 16 bits, which overflow and saturate with full 8-bit weights; 7 bits cannot
    overflow, so every CPU computes the same int8 model. Per-channel scales win back the bit.
    """
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Pre-processing (ONNX shape inference + onnxruntime's constant folding) is what onnxruntime
        # recommends before quantizing; the folding also turns the fused Attention's concatenated
        # Q/K/V weights into one initializer, which the quantizer needs. Its symbolic shape inference
        # is skipped: it cannot follow the position-id slice Min(512, sequence) in this graph.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        prepare_attention_for_quantization(prepared)
        quantize_dynamic(
            str(prepared), str(int8_path), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
        )
    onnx.checker.check_model(str(int8_path), full_check=True)


def check_parity(model: ColaModel, example: dict[str, torch.Tensor], fp32_path: Path) -> float:
    """Max |probability difference| between PyTorch and ONNX Runtime on the example batch."""
    with torch.inference_mode():
        expected = torch.softmax(model(example["input_ids"], example["attention_mask"]), dim=1).numpy()
    session = make_session(fp32_path)
    logits = session.run([OUTPUT_NAME], {name: example[name].numpy() for name in INPUT_NAMES})[0]
    difference = float(np.abs(softmax(logits) - expected).max())
    if difference > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX Runtime disagrees with PyTorch by {difference:.2e} (> {PARITY_TOLERANCE})")
    return difference


def convert(
    checkpoint: Path = CHECKPOINT, out_dir: Path = EXPORT_DIR, opset: int = OPSET, portable: bool = False
) -> dict[str, Path]:
    """Write model.onnx, model.int8.onnx, the tokenizer and model_config.json into `out_dir`.

    By default the graph gets ONNX Runtime's fused kernels; `portable=True` keeps standard ops only.
    """
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    model = load_classifier(checkpoint)
    # Labels and max_length exactly as training saved them (week 2), so serving cannot disagree.
    saved = load_saved_config(checkpoint)
    labels, max_length = list(saved.data.labels), int(saved.data.max_length)
    model_name = model.hparams.model_name
    tokenizer = load_tokenizer(model_name)
    example = tokenizer(
        EXAMPLE_SENTENCES, truncation=True, padding="max_length", max_length=max_length, return_tensors="pt"
    )
    example = {name: example[name].to(torch.int64) for name in INPUT_NAMES}

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {variant: out_dir / name for variant, name in MODEL_FILES.items()}
    log.info("exporting %s (opset %d, dynamic batch and sequence axes) ...", checkpoint, opset)
    export_onnx(model, example, written["fp32"], opset)
    log.info("wrote %s (%s), onnx.checker passed", written["fp32"], file_mb(written["fp32"]))
    if not portable:
        fused = fuse_for_onnx_runtime(written["fp32"])
        log.info("fused for ONNX Runtime: %s", ", ".join(f"{name} x{count}" for name, count in fused.items()))
    difference = check_parity(model, example, written["fp32"])
    log.info("parity: max |probability difference| PyTorch vs ONNX Runtime = %.1e", difference)

    quantize_int8(written["fp32"], written["int8"])
    log.info("wrote %s (%s), onnx.checker passed", written["int8"], file_mb(written["int8"]))

    for path in tokenizer.save_pretrained(out_dir):
        written[Path(path).name] = Path(path)
    log.info("wrote the tokenizer to %s", out_dir)

    config = {
        "labels": labels,
        "max_length": max_length,
        "opset": opset,
        "onnx_runtime_fusions": not portable,
        "inputs": list(INPUT_NAMES),
        "outputs": [OUTPUT_NAME],
        "models": dict(MODEL_FILES),
        "pad_token": tokenizer.pad_token,
        "pad_id": tokenizer.pad_token_id,
        "source_checkpoint": str(checkpoint),
        "source_checkpoint_sha256": sha256(checkpoint),
        "base_model": model_name,
    }
    written["config"] = out_dir / CONFIG_NAME
    written["config"].write_text(json.dumps(config, indent=2) + "\n")
    log.info("wrote %s", written["config"])
    return written


def main() -> None:
    # INFO for this script only: onnxscript's optimizer and the quantizer log dozens of INFO lines.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="default: artifacts/checkpoints/best.ckpt")
    parser.add_argument("--out-dir", type=Path, default=EXPORT_DIR, help="default: artifacts/onnx")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default: {OPSET})")
    parser.add_argument("--portable", action="store_true", help="standard ONNX ops only, no ONNX Runtime fusions")
    args = parser.parse_args()
    convert(args.checkpoint, args.out_dir, args.opset, args.portable)


if __name__ == "__main__":
    run_cli(main)
