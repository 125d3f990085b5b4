"""`python -m pipeline.cpu_backend MODEL_DIR ...`: the argv contract of the cpu-tiny serve bundle."""

from pipeline.cpu_backend.runner import MODULE, cpu_serve

if __name__ == "__main__":
    cpu_serve(prog_name=f"python -m {MODULE}")
