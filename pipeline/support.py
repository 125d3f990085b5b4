"""Does a profile load on the pinned TensorRT-LLM? The support matrix and the facts, applied to one profile.

The checks, in order (the first that decides wins):
  - backend cpu: the CPU stand-in, no TensorRT-LLM involved;
  - moe_backend: only CUTLASS (support_matrix.json `moe_backends`: the Hunyuan loader renames expert weights
    for CutlassFusedMoE only; VANILLA is the slow reference);
  - backend tensorrt: trtllm-build has no Hunyuan class at the pin (facts.json `trtllm_build_model_map`), so a
    model class file is required; with one, the matrix (PyTorch backend) says nothing: unknown;
  - weights format x the GPU's sm: the matrix cell.
`require_loads` turns a refusal into one line with the evidence and the nearest shipped profile that works.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.profiles import Profile
from pipeline.trtllm import load_facts
from pipeline.trtllm.support_matrix import evidence_text, load_matrix, lookup
from pipeline.weights_formats import FORMATS

SUPPORTED_MOE_BACKEND = "CUTLASS"
LOADS, REFUSED, UNKNOWN = "loads", "refused", "unknown"
VERDICT_OF_CELL = {"yes": LOADS, "no": REFUSED, "unknown": UNKNOWN}


@dataclass(frozen=True)
class Support:
    verdict: str  # loads | refused | unknown
    basis: str  # short: what decided it
    detail: str = ""  # one line: the evidence when refused or unknown, the cell's note when it loads

    @property
    def refused(self) -> bool:
        return self.verdict == REFUSED


def _evidence(names) -> str:
    return "; ".join(evidence_text(name) for name in names)


def _moe_backend(profile: Profile) -> Support | None:
    if profile.moe_backend == SUPPORTED_MOE_BACKEND:
        return None
    row = load_matrix()["moe_backends"][profile.moe_backend]
    why = row.get("note") or ("loads Hunyuan" if row["hunyuan_loads"] else "does not load Hunyuan")
    return Support(REFUSED, f"moe_backend {profile.moe_backend}",
                   f"moe_backend {profile.moe_backend}: {why}; use CUTLASS, the MoE backend whose expert names the "
                   f"Hunyuan loader maps (evidence: {_evidence(row['evidence'])})")


def _tensorrt_model_class(profile: Profile) -> Support | None:
    if profile.backend != "tensorrt":
        return None
    if profile.model_cls_file and profile.model_cls_name:
        return Support(UNKNOWN, "tensorrt backend with a custom model class",
                       "the support matrix covers the PyTorch backend; the engine build with "
                       f"{profile.model_cls_name} from {profile.model_cls_file} is unchecked")
    missing = " and ".join(flag for flag, value in (("--model-cls-file", profile.model_cls_file),
                                                     ("--model-cls-name", profile.model_cls_name)) if not value)
    fact = load_facts()["trtllm_build_model_map"]
    return Support(REFUSED, "tensorrt backend without a model class",
                   f"backend tensorrt needs {missing} (YAML model_cls_file/model_cls_name): {fact['value']} "
                   f"(evidence: {'; '.join(fact['evidence'])}); or use backend pytorch")


def _matrix(profile: Profile) -> Support:
    fmt = FORMATS[profile.weights]
    cell = lookup(fmt.matrix_row, profile.gpu.sm)
    basis = f"matrix {fmt.matrix_row} on {cell.sm}: {cell.verdict} ({cell.basis})"
    if cell.loads:
        return Support(LOADS, basis, cell.note)
    note = f": {cell.note}" if cell.note else ""
    return Support(VERDICT_OF_CELL[cell.verdict], basis,
                   f"weights {profile.weights} ({fmt.matrix_row}) on {profile.accelerator} ({cell.sm}) "
                   f"{'does not load' if cell.verdict == 'no' else 'is unverified'} at TensorRT-LLM "
                   f"{load_matrix()['trtllm_version']}{note} (evidence: {_evidence(cell.evidence)})")


def support(profile: Profile) -> Support:
    if profile.backend == "cpu":
        return Support(LOADS, "CPU stand-in (no TensorRT-LLM)")
    for check in (_moe_backend, _tensorrt_model_class):
        decided = check(profile)
        if decided:
            return decided
    return _matrix(profile)


def loading_formats(sm: str) -> list[str]:
    """Weights formats whose matrix cell on `sm` says yes."""
    return [name for name, fmt in FORMATS.items() if lookup(fmt.matrix_row, sm).loads]


def nearest_working_profile(profile: Profile) -> str:
    """The shipped profile closest to `profile` (same accelerator, then same sm, then GPU count) that loads and
    fits, as a hint; empty when none does."""
    from pipeline.memory_plan import make_plan
    from pipeline.profiles import load_profile, profile_names

    candidates = []
    for name in profile_names():
        try:
            other, spec = load_profile(name)
        except PipelineError:
            continue  # a broken profile file is no hint; `profiles list` names its problem
        if other.backend == "cpu" or support(other).verdict != LOADS or not make_plan(name, other, spec).fits:
            continue
        distance = (other.accelerator != profile.accelerator, other.gpu.sm != profile.gpu.sm,
                    abs(other.num_gpus - profile.num_gpus), name)
        candidates.append((distance, name, other))
    if not candidates:
        return ""
    _, name, other = min(candidates)
    return (f"nearest shipped profile that loads: '{name}' ({other.num_gpus}x {other.accelerator}, "
            f"weights {other.weights})")


def require_loads(name: str, profile: Profile) -> Support:
    """The profile's support verdict; PipelineError (one line) when it is refused."""
    verdict = support(profile)
    if verdict.refused:
        hints = [nearest_working_profile(profile)]
        if profile.gpu.sm:
            hints.append(f"formats that load on {profile.gpu.sm}: {', '.join(loading_formats(profile.gpu.sm))}")
        raise PipelineError(f"profile '{name}' is refused: {verdict.detail}; "
                            + "; ".join(hint for hint in hints if hint))
    return verdict
