"""`hunyuan-trt inspect`: a Hunyuan checkpoint's config, parameter counts and (if present) its weight files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.commands.options import emit
from pipeline.model import A13B_CONFIG, active_params, count_params, load_spec


def describe(path: Path) -> dict:
    spec = load_spec(path)
    counts = count_params(spec)
    model_dir = path if path.is_dir() else path.parent
    weight_files = sorted(p.name for p in model_dir.glob("*.safetensors"))
    return {"source": str(path), "spec": spec.to_dict(),
            "params": {**counts.__dict__, "total": counts.total, "active_per_token": active_params(spec)},
            "weight_files": weight_files}


def _human(data: dict) -> str:
    spec, params = data["spec"], data["params"]
    lines = [f"source        {data['source']}",
             f"architecture  {spec['architecture']}: {spec['num_layers']} layers, hidden {spec['hidden_size']}, "
             f"{spec['num_heads']} q / {spec['num_kv_heads']} kv heads x {spec['head_dim']}",
             f"MoE           {spec['num_experts']} experts x {spec['expert_intermediate'][0]}, top-{spec['top_k'][0]}, "
             f"{spec['num_shared_experts']} shared x {spec['shared_intermediate']}",
             f"RoPE          theta {spec['rope_theta']:g}, alpha {spec['rope_alpha']} -> base {spec['rotary_base']:.3f}",
             f"params        total {params['total'] / 1e9:.2f} B, active per token {params['active_per_token'] / 1e9:.2f} B"]
    lines += [f"  {key:<15} {params[key]:>16,}" for key in
              ("embedding", "lm_head", "attention", "qk_norms", "router", "shared_expert", "routed_experts", "norms")]
    lines.append(f"weight files  {len(data['weight_files'])}")
    return "\n".join(lines)


@click.command("inspect")
@click.option("--model-dir", type=click.Path(path_type=Path), default=A13B_CONFIG, show_default="shipped A13B config",
              help="HF checkpoint directory or a config.json.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(model_dir, as_json):
    """Parse a Hunyuan config.json and print the model's shape and exact parameter counts."""
    emit(json.loads(json.dumps(describe(model_dir), default=str)), as_json, _human)
