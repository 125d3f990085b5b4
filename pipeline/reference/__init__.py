"""CPU proof that a converted checkpoint is right: forward from the rank shards (simulating the TP/EP world)
against transformers' HunYuanMoEV1ForCausalLM on the HF checkpoint, plus an exact reassembly check.

Deliberately independent of `pipeline.checkpoint`'s layout code: the rank arithmetic here is re-derived
from the checkpoint's own `mapping` block, the way TensorRT-LLM would read it.
"""
