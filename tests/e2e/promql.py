"""Metric names in PromQL (and Grafana's template queries), and the names a /metrics exposition exports.

Enough of PromQL for dashboards: label matchers, ranges, strings and grouping clauses are removed, then every
identifier not followed by ``(`` (a function or an aggregation) and not a keyword is a metric name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                      "offset", "bool", "inf", "nan"})
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", ""),
            "gauge": ("",), "untyped": ("",), "info": ("_info",)}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)?")


def metric_names(expr: str) -> set[str]:
    grafana = _LABEL_VALUES.match(expr)
    if grafana is not None:  # label_values(metric, label) or label_values(label)
        return {grafana.group(1)} if grafana.group(1) and "," in expr else set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        if m.group(2) is None and m.group(1).lower() not in KEYWORDS:
            names.add(m.group(1))
    return names


def exported_names(exposition: str) -> set[str]:
    """Every series name ``exposition`` exports, with its type's suffixes (a family without samples too)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expression) of every panel target and template query of a Grafana dashboard."""
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            yield f"variable {variable['name']}", query["query"] if isinstance(query, dict) else str(query)
