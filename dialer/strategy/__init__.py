"""Contact strategies as data: which contact an account gets next, by days past due and outcome.

`model` (the file format), `loader` (read one file, refuse one that cannot work), `decide` (the
pure next step). Pure: the loader reads one file (and the pack it names); nothing here sends,
dials or asks the policy. docs/strategy.md has the format and the rules.
"""
