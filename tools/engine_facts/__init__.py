"""Extract an inference engine's CLI and serving facts from its released wheel, without importing it.

    python -m tools.engine_facts WHEEL [--out pipeline/engines/facts/<engine>.json]
"""
