"""`python -m pipeline` = `hunyuan-trt`."""

from pipeline.cli import main

main()
