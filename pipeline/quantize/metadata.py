"""The small files of a quantized checkpoint: config.json in A13B key style, hf_quant_config.json, the
manifest, and the tokenizer/template files copied from the source.

config.json is the source's own (A13B key style: rope_theta + rope_scaling with alpha, torch_dtype), never
the transformers-5 style ModelOpt's export writes: TensorRT-LLM 1.2.1 runs transformers 4.57.3, which ignores
`rope_parameters` and would fall back to plain RoPE. hf_quant_config.json is what the pinned loader reads
first (facts: config_detection); config.json's `quantization_config` repeats it for other readers.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

from pipeline import __version__
from pipeline.checkpoint.manifest import file_record
from pipeline.errors import PipelineError
from pipeline.quantize import facts
from pipeline.quantize.formats import QuantFormat

HF_QUANT_CONFIG = "hf_quant_config.json"
MANIFEST = "quantization_manifest.json"
# files copied from the source next to the weights: tokenizer, chat template, generation defaults, remote code
SIDE_FILES = ("tokenizer*", "special_tokens_map.json", "added_tokens.json", "chat_template*",
              "generation_config.json", "*.tiktoken", "vocab*", "merges.txt", "*.model", "*.py")


def exclude_modules(config: dict) -> list[str]:
    """The modules the loader must keep unquantized (facts: exclusion.must_be_excluded), by exact name."""
    layers = int(config["num_hidden_layers"])
    return ["lm_head", "model.embed_tokens", *(facts.module_name("router", layer) for layer in range(layers))]


def quantization_block(fmt: QuantFormat, exclude: list[str]) -> dict:
    block = {"quant_algo": fmt.quant_algo, "kv_cache_quant_algo": None, "exclude_modules": exclude}
    if fmt.group_size:
        block["group_size"] = fmt.group_size
    return block


def hf_quant_config(fmt: QuantFormat, exclude: list[str], quantizer: str) -> dict:
    return {"producer": {"name": "hunyuan-trt", "version": __version__, "quantizer": quantizer},
            "quantization": quantization_block(fmt, exclude)}


def quantized_config(source: dict, fmt: QuantFormat, exclude: list[str], where: str) -> dict:
    """The source config.json with torch_dtype bfloat16 and a ModelOpt-style quantization_config."""
    if "rope_parameters" in source and "rope_scaling" not in source:
        raise PipelineError(f"{where}: uses transformers-5 'rope_parameters'; expected the A13B key style "
                            "(rope_theta + rope_scaling), which transformers 4.57.3 in TensorRT-LLM 1.2.1 reads")
    config = {key: value for key, value in source.items() if key not in ("quantization_config", "dtype")}
    config["torch_dtype"] = "bfloat16"
    config["quantization_config"] = {"quant_method": "modelopt", **quantization_block(fmt, exclude)}
    return config


def write_json(path: Path, data: dict) -> dict:
    path.write_text(json.dumps(data, indent=2) + "\n")
    return file_record(path)


def copy_side_files(source_dir: Path, out: Path) -> dict[str, dict]:
    records = {}
    for path in sorted(Path(source_dir).iterdir()):
        if path.is_file() and any(fnmatch.fnmatch(path.name, pattern) for pattern in SIDE_FILES):
            shutil.copyfile(path, out / path.name)
            records[path.name] = file_record(out / path.name)
    return records


def made_from(fmt: QuantFormat, method: str, fingerprint: str) -> dict:
    """The manifest fields that decide the output of a conversion that calibrates nothing."""
    return {"tool_version": __version__, "format": fmt.name, "method": method,
            "trtllm_pin": facts.load_facts()["pin_commit"], "fingerprint": fingerprint}


def recorded_made_from(manifest_data: dict) -> dict:
    return {**{key: manifest_data.get(key) for key in ("tool_version", "format", "method", "trtllm_pin")},
            "fingerprint": (manifest_data.get("source") or {}).get("fingerprint")}


def manifest(*, fmt: QuantFormat, method: str, quantizer: str, source_dir: Path, fingerprint: str,
             calibration: dict | None, files: dict[str, dict]) -> dict:
    """What the checkpoint was made from and of; no timestamps, so re-runs are byte-identical."""
    made = made_from(fmt, method, fingerprint)
    return {"format_version": 1, "tool": "hunyuan-trt quantize", "tool_version": made["tool_version"],
            "format": fmt.name, "quant_algo": fmt.quant_algo, "method": method, "quantizer": quantizer,
            "trtllm_pin": made["trtllm_pin"],
            "source": {"model_dir": str(Path(source_dir).absolute()), "fingerprint": fingerprint},
            "calibration": calibration, "files": dict(sorted(files.items()))}
