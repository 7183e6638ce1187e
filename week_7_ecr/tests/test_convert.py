"""The export folder: its files, a valid graph with dynamic axes, int8 weights, reproducible bytes."""

from __future__ import annotations

import json

import onnx
from onnx import TensorProto

from conftest import TEST_MAX_LENGTH, run_script
from convert_model_to_onnx import OPSET, convert
from inference_onnx import CONFIG_NAME, INPUT_NAMES, MODEL_FILES, OUTPUT_NAME
from model import LABELS


def test_export_dir_has_models_tokenizer_and_config(exported: dict) -> None:
    export_dir = exported["export_dir"]
    for name in [*MODEL_FILES.values(), "tokenizer.json", "tokenizer_config.json", CONFIG_NAME]:
        assert (export_dir / name).is_file(), f"{name} missing from {sorted(p.name for p in export_dir.iterdir())}"
    config = json.loads((export_dir / CONFIG_NAME).read_text())
    assert config["labels"] == LABELS
    assert config["max_length"] == TEST_MAX_LENGTH
    assert config["opset"] == OPSET
    assert config["source_checkpoint"] == str(exported["checkpoint"])
    assert config["base_model"] == "offline_model"


def test_graphs_pass_the_checker_with_dynamic_int64_inputs(exported: dict) -> None:
    for name in MODEL_FILES.values():
        model = onnx.load(exported["export_dir"] / name)
        onnx.checker.check_model(model, full_check=True)
        assert {op.domain: op.version for op in model.opset_import}[""] == OPSET
        inputs = {i.name: i.type.tensor_type for i in model.graph.input}
        assert list(inputs) == list(INPUT_NAMES)
        for tensor in inputs.values():
            assert tensor.elem_type == TensorProto.INT64
            # A symbolic dim_param (not a fixed dim_value) on both axes is what makes them dynamic.
            assert [d.dim_param for d in tensor.shape.dim] == ["batch", "sequence"]
        assert [o.name for o in model.graph.output] == [OUTPUT_NAME]


def test_int8_model_has_integer_matmuls_and_is_much_smaller(exported: dict) -> None:
    fp32, int8 = (exported["export_dir"] / MODEL_FILES[v] for v in ("fp32", "int8"))
    ops = [node.op_type for node in onnx.load(int8).graph.node]
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    # The fused attention is quantized too (QAttention), not left in fp32: one per layer.
    assert ops.count("QAttention") == 2 and "Attention" not in ops
    assert int8.stat().st_size < 0.3 * fp32.stat().st_size


def test_int8_attention_keeps_the_padding_mask(exported: dict) -> None:
    # onnxruntime's quantizer drops Attention's attention_bias input (where the exporter puts the
    # padding mask); the converter hands QAttention the same mask as mask_index (input 5) instead.
    graph = onnx.load(exported["export_dir"] / MODEL_FILES["int8"]).graph
    producers = {output: node for node in graph.node for output in node.output}
    attentions = [node for node in graph.node if node.op_type == "QAttention"]
    assert attentions
    for node in attentions:
        assert len(node.input) > 5 and node.input[5], f"{node.name} has no mask_index: padding would be attended"
        cast = producers[node.input[5]]
        assert cast.op_type == "Cast" and list(cast.input) == ["attention_mask"]


def test_int8_weights_use_seven_bits_so_no_cpu_saturates(exported: dict) -> None:
    # Without VNNI, ONNX Runtime's u8 x s8 kernel sums pairs of products in 16 bits: 2 x 255 x 127
    # overflows 32767, 2 x 255 x 64 = 32640 does not. reduce_range keeps every int8 weight in [-64, 64].
    import numpy as np
    from onnx import numpy_helper

    graph = onnx.load(exported["export_dir"] / MODEL_FILES["int8"]).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = [
        initializers[node.input[1]]
        for node in graph.node
        if node.op_type in ("MatMulInteger", "QAttention") and node.input[1] in initializers
    ]
    assert len(weights) >= 6  # 2 attentions + 2 x 2 feed-forward matmuls at least
    for weight in weights:
        assert weight.dtype == np.int8
        assert weight.min() >= -64 and weight.max() <= 64


def test_converting_again_writes_identical_files(exported: dict, tmp_path) -> None:
    # A DVC stage is only cached and reproduced cleanly when the same input gives the same bytes.
    again = convert(exported["checkpoint"], tmp_path / "onnx")
    for key, path in exported["written"].items():
        assert again[key].read_bytes() == path.read_bytes(), f"{path.name} differs between two conversions"


def test_cli_missing_checkpoint_is_one_clear_line(tmp_path) -> None:
    done = run_script(
        "convert_model_to_onnx.py", "--checkpoint", str(tmp_path / "none.ckpt"), "--out-dir", str(tmp_path / "o")
    )
    assert done.returncode == 2
    assert "no trained model" in done.stderr and "python train.py" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()
