"""Hunyuan-A13B-Instruct → TensorRT-LLM build-and-serve pipeline."""

__version__ = "0.1.0"
