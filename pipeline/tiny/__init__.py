"""hunyuan-tiny: the embedded, CPU-trained Hunyuan-architecture model (data, tokenizer, trainer, evaluator)."""
