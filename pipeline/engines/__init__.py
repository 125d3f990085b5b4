"""Inference engines beside TensorRT-LLM (vLLM, SGLang): their pinned release facts (facts/<engine>.json,
written by `python -m tools.engine_facts WHEEL`) and the check of what we emit against them (facts.py).
"""
