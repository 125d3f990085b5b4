"""`python -m pipeline.cpu_backend MODEL_DIR ...`: the argv contract of the cpu-tiny serve bundle."""

from pipeline.commands.cpu_serve import cpu_serve

if __name__ == "__main__":
    cpu_serve(prog_name="python -m pipeline.cpu_backend")
