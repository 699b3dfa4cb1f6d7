"""`python -m duecall` is the `duecall` command."""

from duecall.cli import main

main(prog_name="duecall")
