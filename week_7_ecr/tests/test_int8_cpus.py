"""The int8 model gives the same answers on the int8 kernels of other CPUs, not only this one.

ONNX Runtime picks its int8 matrix kernels by instruction set: AMX, AVX-512 VNNI or AVX-VNNI on
recent servers, AVX2 on most laptops before 2020 (and AMD before Zen 4), SSE on old machines. A
learner's laptop may run a kernel family this machine never uses. qemu-user (Debian's
`qemu-user`) runs this Python under an emulated CPU whose CPUID lacks the newer instructions, so
ONNX Runtime really dispatches to those kernels; a probe proves it did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import WEEK_DIR

QEMU = shutil.which("qemu-x86_64")
# Haswell: AVX2 without VNNI (u8 x s8 pairs summed in 16 bits, with saturation). Nehalem: SSE4.2 only.
EMULATED_CPUS = ["Haswell", "Nehalem"]
SENTENCES = 128  # two batches of 64; emulation is ~50x slower than native, so a sample, not all 600

pytestmark = pytest.mark.skipif(
    QEMU is None and os.environ.get("CI") != "true" or sys.platform != "linux" or os.uname().machine != "x86_64",
    reason="needs qemu-user on x86-64 Linux (apt-get install qemu-user)",
)

# Runs inside the emulated CPU: the int8 model's P(acceptable) for the first validation sentences.
PREDICT = """
import json, sys
from inference_onnx import ColaOnnxPredictor
from source import read_split
predictor = ColaOnnxPredictor(sys.argv[1], "int8", threads=1)
sentences = [row["sentence"] for row in read_split("validation")][: int(sys.argv[2])]
batches = [sentences[start : start + 64] for start in range(0, len(sentences), 64)]
print(json.dumps([r["probabilities"]["acceptable"] for batch in batches for r in predictor.predict_batch(batch)]))
"""

# A u8 x s8 product that overflows 16 bits in pairs (2 x 255 x 127 > 32767): exact on VNNI and SSE,
# saturated on the AVX2 kernel. Prints the computed value and the exact one.
PROBE = """
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
k = 64
node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
weights = numpy_helper.from_array(np.full((k, 8), 127, np.int8), "b")
graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, k])],
    [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 8])], [weights])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
print(int(session.run(None, {"a": np.full((1, k), 255, np.uint8)})[0][0, 0]), 255 * 127 * k)
"""


def run_on(cpu: str | None, code: str, *args: str) -> str:
    """Run `code` in a new Python on this CPU (None) or on an emulated one; its last printed line."""
    if cpu is not None:
        assert QEMU is not None, "qemu-user is missing: apt-get install qemu-user (CI installs it)"
    prefix = [QEMU, "-cpu", cpu] if cpu is not None else []
    done = subprocess.run(
        [*prefix, sys.executable, "-c", code, *args],
        cwd=WEEK_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(WEEK_DIR)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_emulated_avx2_cpu_really_uses_the_saturating_kernel() -> None:
    # Without this, a CPU flag qemu ignored would make the comparison below pass vacuously.
    computed, exact = map(int, run_on("Haswell", PROBE).split())
    assert computed < exact
    computed, exact = map(int, run_on("Nehalem", PROBE).split())
    assert computed == exact


@pytest.mark.parametrize("cpu", EMULATED_CPUS)
def test_int8_model_answers_the_same_on_other_cpu_kernels(exported: dict, cpu: str) -> None:
    # The same script natively and emulated: only the CPU differs.
    args = (str(exported["export_dir"]), str(SENTENCES))
    reference = np.array(json.loads(run_on(None, PREDICT, *args)))
    scores = np.array(json.loads(run_on(cpu, PREDICT, *args)))
    assert scores.shape == reference.shape == (SENTENCES,)
    # 7-bit weights cannot saturate, so every kernel sums the same integers: only float rounding differs.
    assert np.abs(scores - reference).max() <= 1e-4
    assert ((scores > 0.5) == (reference > 0.5)).all()
