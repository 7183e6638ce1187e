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
