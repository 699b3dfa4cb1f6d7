"""`python -m dialer` is the `duecall` command."""

from dialer.cli import main

main(prog_name="duecall")
