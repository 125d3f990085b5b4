"""One click command per pipeline stage; registered in pipeline.cli.COMMANDS."""
