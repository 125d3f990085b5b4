"""A CPU stand-in for trtllm-serve: the same HTTP surface, a small Hugging Face Hunyuan model underneath.

Run it as `python -m pipeline.cpu_backend MODEL_DIR --host H --port P --served_model_name NAME
--max_batch_size N --max_seq_len N [--max_queue Q]` (the argv the cpu-tiny bundle uses) or as
`hunyuan-trt cpu-serve` with the same options.
"""
