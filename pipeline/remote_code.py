"""The remote-code layout of Tencent's A13B checkpoints, for tiny test checkpoints (`make-tiny --remote-code`).

The published config.json names its classes through `auto_map` (`configuration_hunyuan.HunYuanConfig`,
`hunyuan.HunYuanMoEV1ForCausalLM`, model_type `hunyuan`) and ships those modules next to the weights. With
`trust_remote_code`, transformers copies them into $HF_MODULES_CACHE (default $HF_HOME/modules) before
importing them, which fails on a read-only cache. The modules written here are small subclasses of
transformers' native Hunyuan classes: same weights, same numerics, the same loading path.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_TYPE = "hunyuan"
AUTO_MAP = {"AutoConfig": "configuration_hunyuan.HunYuanConfig",
            "AutoModelForCausalLM": "hunyuan.HunYuanMoEV1ForCausalLM"}
MODULES = {
    "configuration_hunyuan.py": '''"""HunYuanConfig: transformers' HunYuanMoEV1Config under the checkpoint's model_type."""
from transformers import HunYuanMoEV1Config


class HunYuanConfig(HunYuanMoEV1Config):
    model_type = "hunyuan"
''',
    "hunyuan.py": '''"""HunYuanMoEV1ForCausalLM bound to the checkpoint's HunYuanConfig."""
from transformers import HunYuanMoEV1ForCausalLM as NativeHunYuanMoEV1ForCausalLM

from .configuration_hunyuan import HunYuanConfig


class HunYuanMoEV1ForCausalLM(NativeHunYuanMoEV1ForCausalLM):
    config_class = HunYuanConfig
''',
}


def add_remote_code(model_dir: Path) -> None:
    """Give the checkpoint in `model_dir` the published remote-code layout: auto_map + the two modules."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config.update(model_type=MODEL_TYPE, auto_map=AUTO_MAP)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    for name, text in MODULES.items():
        (model_dir / name).write_text(text)
