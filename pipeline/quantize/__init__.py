"""The quantize stage: Hugging Face BF16 Hunyuan weights → a quantized HF-layout checkpoint that the pinned
TensorRT-LLM PyTorch backend loads (ModelOpt `hf_quant_config.json` + per-tensor scales).

Modules, one job each: `facts` (the pinned loader facts, pipeline/trtllm/quant_loader_facts.json),
`roles` (every HF tensor name → its role and TensorRT-LLM module), `formats` (fp8 / int8-wo / w4a8-awq),
`calibration` (built-in and JSONL prompt sets), `modelopt_run` (NVIDIA ModelOpt: mtq.quantize +
export_hf_checkpoint), `int8` (our per-tensor INT8 weight-only quantizer for checkpoints that do not fit in
memory), `raw` (safetensors words ↔ torch), `emit` (streams output tensors into shards, atomically),
`metadata` (config.json in A13B key style, hf_quant_config.json, manifest), `published` (Tencent's AngelSlim
FP8 layout: reader and synthetic writer), `layout` (the check against the facts), `emulate` (the quantized
checkpoint run on CPU as the GPU runs it), `check` (verify --quantized), `sizes` (weight bytes of a real
layout, for the planner), `stage` (the command end to end).
"""
