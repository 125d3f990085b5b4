"""`hunyuan-trt profiles list|show|schema`."""

from __future__ import annotations

import json

import click

from pipeline.commands.options import emit
from pipeline.memory_plan import make_plan
from pipeline.profiles import json_schema, load_profile, profile_names
from pipeline.support import support


@click.group()
def profiles():
    """List, show and export the schema of the hardware profiles in engine_configs/."""


def _row(name: str) -> dict:
    from pipeline.engines.registry import engine_verdicts

    profile, spec = load_profile(name)
    result = make_plan(name, profile, spec)
    loads = support(profile)
    return {"name": name, "description": profile.description, "accelerator": profile.accelerator,
            "num_gpus": profile.num_gpus, "weights": profile.weights, "kv_cache_dtype": profile.kv_dtype,
            "tp/moe_tp/moe_ep": f"{profile.tp_size}/{profile.moe_tp_size}/{profile.moe_ep_size}",
            "fits": result.fits, "kv_token_capacity": result.kv_token_capacity,
            "weights_gib_per_gpu": result.weights_gib_per_gpu, "hardware_validated": profile.hardware_validated,
            "loads": loads.verdict, "loads_basis": loads.basis, "loads_detail": loads.detail,
            "engines": engine_verdicts(name, profile, spec)}


def _table(rows: list[dict]) -> str:
    header = f"{'profile':<12} {'GPUs':<16} {'weights':<8} {'KV':<5} {'tp/mtp/ep':<9} {'W GiB/GPU':>9} " \
             f"{'KV tokens':>11}  {'memory':<12}  loads at the pin (basis)"
    lines = [header, "-" * len(header)]
    for r in rows:
        gpus = f"{r['num_gpus']}x {r['accelerator']}"
        lines.append(f"{r['name']:<12} {gpus:<16} {r['weights']:<8} {r['kv_cache_dtype']:<5} "
                     f"{r['tp/moe_tp/moe_ep']:<9} {r['weights_gib_per_gpu']:>9.2f} {r['kv_token_capacity']:>11,}  "
                     f"{'fits' if r['fits'] else 'DOES NOT FIT':<12}  {r['loads']} ({r['loads_basis']})"
                     f"{'' if r['hardware_validated'] else '; not run on hardware yet'}")
        lines.append(f"{'':<12} engines: " + ", ".join(f"{engine} {verdict}" for engine, verdict in r["engines"].items()))
    return "\n".join(lines)


@profiles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json):
    """Every profile with its planner verdict, KV capacity, whether it loads at the pin (support matrix), and per
    engine (trtllm, vllm, sglang) whether it loads and fits there and with which checkpoint."""
    emit([_row(name) for name in profile_names()], as_json, _table)


@profiles.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_cmd(name, as_json):
    """The fully resolved profile (extends applied, defaults filled) with derived values."""
    profile, spec = load_profile(name)
    data = {"profile": profile.model_dump(exclude={"extends"}),
            "derived": {"slug": profile.slug, "kv_dtype": profile.kv_dtype,
                        "model_config_path": str(profile.model_config_path()),
                        "rotary_base": spec.rotary_base, "loads_at_the_pin": vars(support(profile))},
            "plan": make_plan(name, profile, spec).to_dict()}
    emit(data, as_json, lambda d: json.dumps(d, indent=2, default=str))


@profiles.command("schema")
def schema_cmd():
    """JSON Schema of a profile file (for editors and CI)."""
    click.echo(json.dumps(json_schema(), indent=2))
