"""Accelerators the profiles target, as data.

memory_gib is what the driver reports as total (nvidia-smi MiB / 1024), not the marketing GB.
Bandwidth and dense tensor-core TFLOPS come from NVIDIA datasheets (see README, "Profiles").
`k8s_product` is the value of the `nvidia.com/gpu.product` node label set by GPU feature discovery.
`sm` is the CUDA compute capability as TensorRT-LLM's support data names it (pipeline/trtllm/support_matrix.json).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_gib: float
    bandwidth_tbs: float  # HBM/GDDR bandwidth per device
    bf16_tflops: float  # dense
    fp8_tflops: float | None  # dense; None = no FP8 tensor cores
    k8s_product: str | None
    max_per_node: int = 8
    sm: str | None = None  # None: not a CUDA GPU

    @property
    def has_fp8(self) -> bool:
        return self.fp8_tflops is not None


ACCELERATORS = {
    accelerator.name: accelerator
    for accelerator in (
        Accelerator("a100-sxm-80g", 80.0, 2.039, 312, None, "NVIDIA-A100-SXM4-80GB", sm="sm80"),
        Accelerator("h100-sxm-80g", 79.6, 3.35, 989, 1979, "NVIDIA-H100-80GB-HBM3", sm="sm90"),
        Accelerator("h200-sxm-141g", 140.4, 4.8, 989, 1979, "NVIDIA-H200", sm="sm90"),
        Accelerator("h20-96g", 95.6, 4.0, 148, 296, "NVIDIA-H20", sm="sm90"),
        Accelerator("l40s-48g", 45.0, 0.864, 362, 733, "NVIDIA-L40S", sm="sm89"),
        # GeForce RTX 4090 (AD102, PCIe, no NVLink): nvidia-smi reports 24564 MiB; 1008 GB/s GDDR6X; dense tensor
        # TFLOPS with FP32 accumulate 165.2 BF16 / 330.3 FP8 (NVIDIA Ada Lovelace architecture whitepaper,
        # appendix table "GeForce RTX 4090"; GeForce halves the FP32-accumulate rate); compute capability 8.9.
        Accelerator("rtx4090-24g", 23.99, 1.008, 165.2, 330.3, "NVIDIA-GeForce-RTX-4090", sm="sm89"),
        # The embedded default runs on host CPU cores; "memory" is the RAM budget per simulated rank.
        Accelerator("cpu", 4.0, 0.02, 0.2, None, None, max_per_node=8),
    )
}
