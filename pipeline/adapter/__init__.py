"""OpenAI-compatible front for trtllm-serve that understands Hunyuan's raw output format.

TensorRT-LLM has no Hunyuan reasoning or tool parser, so trtllm-serve returns the model's raw text
(`<think>…</think><answer>…</answer>`, `<tool_calls>[…]</tool_calls>`). `parser` turns that text into
reasoning, content and tool calls (streaming and not); `transform` applies it to OpenAI request and
response shapes; `app` is the HTTP proxy.
"""
