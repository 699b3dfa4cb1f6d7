"""Every metric's definition is published: docs/reports.md gives its numerator and denominator."""

from __future__ import annotations

from pathlib import Path

from reports.metrics import BY_KEY, METRICS, hover

DOCS = (Path(__file__).parents[2] / "docs" / "reports.md").read_text(encoding="utf-8")


def test_each_metric_is_in_the_docs_with_its_numerator_and_denominator() -> None:
    for metric in METRICS:
        [row] = [line for line in DOCS.splitlines() if line.startswith(f"| `{metric.key}` |")]
        assert metric.numerator in row and metric.denominator in row, metric.key


def test_keys_are_unique_and_the_hover_says_what_is_divided_by_what() -> None:
    assert len(BY_KEY) == len(METRICS)
    assert hover(BY_KEY["contact_rate"]) == (
        "Contact rate: accounts on which a person answered at least one call (not a machine)"
        " / accounts attempted"
    )
    assert hover(BY_KEY["attempts"]) == "Calls placed: calls placed (an Originate Asterisk accepted)"
