"""Report comparison (the CI gate) and the HTML report."""

# Lower is better for these; every other numeric metric is higher-is-better.
LOWER_IS_BETTER = ("latency", "abstain_rate_in_scope")
# Latency depends on the machine: shown, never gated.
NOT_GATED = ("latency",)


def _flatten(report: dict) -> dict[str, float]:
    out = {}
    for variant, metrics in (report.get("variants") or {}).items():
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                out[f"{variant}.{name}"] = float(value)
    for name in ("accuracy", "macro_f1", "oos_precision", "oos_recall"):
        if isinstance(report.get(name), (int, float)):
            out[name] = float(report[name])
    return out


def compare_reports(before: dict, after: dict, max_drop: float) -> tuple[list[tuple[str, float, float, bool]], int]:
    """Rows (metric, before, after, regressed) for metrics in both reports, and the regression count."""
    a, b = _flatten(before), _flatten(after)
    rows, failed = [], 0
    for name in sorted(set(a) & set(b)):
        change = b[name] - a[name]
        if any(k in name for k in LOWER_IS_BETTER):
            change = -change
        bad = change < -max_drop and not any(k in name for k in NOT_GATED)
        failed += bad
        rows.append((name, a[name], b[name], bad))
    return rows, failed
