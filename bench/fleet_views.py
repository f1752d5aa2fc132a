"""The fleet views at fleet scale: a drift report of N tenants rendered as the
HTML page and as CSV.

    .venv/bin/python bench/fleet_views.py [--tenants 10000] [--repeat 3] [--out DIR]

The report is built in memory (no sandbox): every tenant BasicAuth, one in
seven drifted (its senderName edited), each with a verify-connection result.
Measured, median of `--repeat` runs: `render_drift_html` and
`render_drift_csv`, and the size of what they return. `--out DIR` keeps
fleet.html and fleet.csv, to open the page in a browser.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from pathlib import Path

from reconciler.client.live import normalize
from reconciler.engine.drift import ConnectionCheck, DriftReport, build_report
from reconciler.model import ApiKeyAuth, DesiredEmail, Provider, SourcePos, TenantSpec
from reconciler.report.fleet import render_drift_csv
from reconciler.report.page import render_drift_html
from reconciler.secrets import SecretRef

SMTP = {
    "serverAddress": "smtp.example.com",
    "serverPort": 587,
    "securityType": "StartTLS",
    "username": "mailer",
    "emailAddress": "qlik@example.com",
    "senderName": "Qlik",
}


def fleet(count: int) -> DriftReport:
    """A drift report of `count` tenants, one in seven drifted."""
    desired = DesiredEmail.of(Provider.BASIC_AUTH, SMTP, SecretRef("env", "SMTP_PASSWORD"))
    specs, live, checks = [], {}, {}
    for index in range(count):
        name = f"tenant-{index:05d}"
        specs.append(
            TenantSpec(
                name,
                f"https://{name}.eu.qlikcloud.com",
                ApiKeyAuth(SecretRef("env", "QLIK_API_KEY")),
                desired,
                SourcePos(f"tenants/{name}.yaml"),
            )
        )
        fields = {**SMTP, "senderName": "Edited"} if index % 7 == 0 else SMTP
        live[name] = normalize(
            {
                "serviceProvider": "BasicAuth",
                "providerConfig": fields,
                "passwordExists": True,
                "isValid": True,
                "errorCode": "OK",
                "authFailures": 0,
            }
        )
        checks[name] = ConnectionCheck(True, "Connection verified")
    return build_report(specs, live, [], date(2026, 1, 1), checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = fleet(args.tenants)
    for name, render in (("html", render_drift_html), ("csv", render_drift_csv)):
        times, text = [], ""
        for _ in range(args.repeat):
            start = time.perf_counter()
            text = render(report)
            times.append(time.perf_counter() - start)
        size = len(text.encode())
        print(
            f"{name}: {args.tenants} tenants, {statistics.median(times):.3f} s, "
            f"{size / 1e6:.1f} MB ({size / args.tenants:.0f} bytes a tenant)"
        )
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"fleet.{name}").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
