"""Reading `/metrics` in tests: samples by name and labels, parsed by prometheus-client."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str):
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A sample's value (0 when absent: a labelled counter not counted yet)."""
        return self.samples.get((name, frozenset((labels or {}).items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def scrape(url: str, **headers: str) -> Scrape:
    response = httpx.get(url + "/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)
