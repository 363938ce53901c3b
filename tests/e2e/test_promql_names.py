"""The dashboard checker's own parsing (tests/e2e/promql.py)."""

from __future__ import annotations

from tests.e2e.promql import exported_names, metric_names


def test_metric_names_of_expressions() -> None:
    assert metric_names('histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{instance=~"$i"}'
                        '[$__rate_interval])))') == {"a_seconds_bucket"}
    assert metric_names('sum by (code) (rate(x_total{kind="gaps"}[5m])) / on (job) y + 2 * z offset 5m') == {
        "x_total", "y", "z"}
    assert metric_names("label_values(up, instance)") == {"up"}
    assert metric_names("label_values(instance)") == set()
    assert metric_names('max(tickfan_feed_stale{instance=~"a:b"}) > bool 0') == {"tickfan_feed_stale"}


def test_exported_names_carry_their_suffixes() -> None:
    text = ("# HELP c_total c\n# TYPE c_total counter\n# HELP h h\n# TYPE h histogram\n"
            'h_bucket{le="+Inf"} 1.0\nh_count 1.0\nh_sum 0.5\n# HELP g g\n# TYPE g gauge\ng 1.0\n')
    assert {"c_total", "h_bucket", "h_sum", "h_count", "g"} <= exported_names(text)
