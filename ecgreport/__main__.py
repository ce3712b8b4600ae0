"""`python -m ecgreport ...` (also what torchrun runs with `-m ecgreport`)."""

from ecgreport.cli import app

app(prog_name="ecgreport")
