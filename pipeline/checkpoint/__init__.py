"""HF Hunyuan safetensors → TensorRT-LLM unified checkpoint (config.json + rank{N}.safetensors + manifest).

Modules, one job each: `st_format` (safetensors header bytes), `source` (the HF shard index, bounded reads),
`layout` (which slice each rank owns), `mapping` (THE HF → TRT-LLM table), `tensor_plan` (table × layout × source →
every output tensor and the source slices it is made of), `trt_config` (the checkpoint config.json),
`writer` (streams a plan to rank files), `progress`, `manifest` (fingerprints, no-op detection),
`reassemble` (the inverse, used by verify), `convert` (the stage end to end: profile + flags → written checkpoint).
"""
