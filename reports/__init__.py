"""Effectiveness reports over the store (issue 14): did the reminders work, and did one arm do better.

`metrics` says what each metric counts (numerator and denominator, in words); `stats` holds the
pure numbers of champion/challenger arms (Wilson and Newcombe intervals, the two-proportion test,
the sample size still needed, bootstrap intervals for amounts). Reports read; they never run
campaigns, dial or send (import contracts in pyproject.toml).
"""
