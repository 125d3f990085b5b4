"""CPU proof that a converted checkpoint is right: forward from the rank shards (simulating the TP/EP world)
against transformers' HunYuanMoEV1ForCausalLM on the HF checkpoint, plus an exact reassembly check.

The forward pass is deliberately independent of `pipeline.checkpoint`'s layout code: its rank arithmetic is
re-derived from the checkpoint's own `mapping` block, the way TensorRT-LLM would read it. The reassembly
check does use the converter's plan: it proves the files hold what the plan says and that the plan covers
every element of every HF tensor; the forward pass proves the plan means the right thing.
"""
