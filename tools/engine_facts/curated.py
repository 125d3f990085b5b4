"""Facts about each pinned engine that its wheel cannot tell: the official image and what it carries.

Edit these when re-pinning; `python -m tools.engine_facts` refuses a wheel whose version differs. Every
entry says where it comes from and how certain it is.
"""

CONVENTION_EVIDENCE = (
    "Public repositories in the code index run vllm/vllm-openai:v0.30.0, v0.30.0-cu129 and v0.31.0 and "
    "lmsysorg/sglang:v0.5.20, v0.5.20-cu130 and v0.5.21: one image per release, tagged v<version>, built on "
    "CUDA 13 by default (so NVIDIA driver 580 or newer), with a -cu129 (vLLM) / -cu126 (SGLang) build for "
    "older drivers (code-index search 'vllm/vllm-openai:v0.3' and 'lmsysorg/sglang:v0.5.2', 2026-12-07)."
)
UNVERIFIED = (
    "Not verified from the build sandbox (Docker Hub is unreachable there); check once with "
    "`docker manifest inspect {image}` before the first GPU run."
)

CURATED = {
    "vllm": {
        "version": "0.34.0",
        "image": {
            "name": "vllm/vllm-openai",
            "tag": "v0.34.0",
            "entrypoint": "vllm serve (the image's ENTRYPOINT; argv after the image name are serve arguments)",
            "tag_evidence": CONVENTION_EVIDENCE,
            "tag_verified": False,
            "how_to_verify": UNVERIFIED.format(image="vllm/vllm-openai:v0.34.0"),
            "torch": "2.14.0: the image installs the vllm wheel, whose METADATA pins torch==2.14.0 "
                     "(see requirements.torch)",
            "transformers": ">=5.16.1,<5.23.0 per the wheel METADATA; the exact version baked into the image "
                            "is not known from here (run `pip show transformers` in the image)",
        },
    },
    "sglang": {
        "version": "0.5.23",
        "image": {
            "name": "lmsysorg/sglang",
            "tag": "v0.5.23",
            "entrypoint": "none fixed; run `python -m sglang.launch_server ...` (or `sglang serve`)",
            "tag_evidence": CONVENTION_EVIDENCE,
            "tag_verified": False,
            "how_to_verify": UNVERIFIED.format(image="lmsysorg/sglang:v0.5.23"),
            "torch": "2.14.1: the wheel METADATA pins torch==2.14.1 (see requirements.torch)",
            "transformers": "5.19.0: the wheel METADATA pins transformers==5.19.0",
        },
    },
}
