"""support_matrix.json: every (weights format, GPU architecture) cell has a verdict and resolvable evidence."""

from __future__ import annotations

import pytest

from pipeline.errors import PipelineError
from pipeline.hardware import ACCELERATORS
from pipeline.trtllm.support_matrix import (
    BASES,
    VERDICTS,
    architectures,
    evidence_text,
    load_matrix,
    lookup,
    weights_formats,
)

REQUIRED_FORMATS = {"bf16", "fp8-per-tensor-modelopt", "fp8-block", "int4-awq", "w4a8-awq", "int8-weight-only",
                    "nvfp4", "gptq"}
CELLS = [(weights, sm) for weights in weights_formats() for sm in architectures()]


def test_rows_and_columns_cover_the_required_formats_and_architectures():
    assert REQUIRED_FORMATS <= set(weights_formats())
    assert architectures() == ["sm80", "sm89", "sm90", "sm100"]
    for weights in weights_formats():
        assert set(load_matrix()["formats"][weights]["cells"]) == set(architectures()), weights


@pytest.mark.parametrize("weights,sm", CELLS)
def test_every_cell_has_a_valid_verdict_and_evidence(weights, sm):
    cell = lookup(weights, sm)
    assert cell.verdict in VERDICTS and cell.basis in BASES
    assert cell.evidence and all(evidence_text(name) for name in cell.evidence)
    backends = load_matrix()["moe_backends"]
    if cell.loads:
        assert cell.moe_backends and all(backends[name]["hunyuan_loads"] for name in cell.moe_backends)
        assert cell.basis != "none"
    else:
        assert not cell.moe_backends


def test_every_moe_backend_row_cites_known_evidence():
    for name, row in load_matrix()["moe_backends"].items():
        assert isinstance(row["hunyuan_loads"], bool) and row["evidence"], name
        assert all(evidence_text(key) for key in row["evidence"])


def test_known_verdicts():
    assert lookup("bf16", "sm80").loads
    assert not lookup("fp8-per-tensor-modelopt", "sm80").loads  # no FP8 on Ampere
    assert lookup("fp8-per-tensor-modelopt", "sm90").loads
    assert not lookup("fp8-per-tensor-angelslim", "sm90").loads  # quant_method fp8 without block size is ignored
    assert not lookup("gptq", "sm90").loads
    assert lookup("fp8-block", "sm90").loads and not lookup("fp8-block", "sm89").loads
    assert lookup("int8-weight-only", "sm80").loads


def test_every_gpu_accelerator_has_a_matrix_column():
    for accelerator in ACCELERATORS.values():
        if accelerator.name != "cpu":
            assert accelerator.sm in architectures(), accelerator.name


@pytest.mark.parametrize("weights,sm,message", [
    ("fp8-blok", "sm90", "weights: no support-matrix row 'fp8-blok' (did you mean 'fp8-block'?)"),
    ("bf16", "sm75", "sm: no support-matrix column 'sm75'; expected one of sm80, sm89, sm90, sm100"),
])
def test_lookup_refuses_unknown_names(weights, sm, message):
    with pytest.raises(PipelineError) as caught:
        lookup(weights, sm)
    assert message in str(caught.value)
