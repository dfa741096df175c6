"""Receiver counters in the Prometheus text format, for `GET /metrics`.

A handful of labelled counters do not justify a client library; the format is four lines of
code and the names follow Prometheus conventions so any scraper reads them.
"""

from __future__ import annotations

from collections import Counter


class ReceiverMetrics:
    def __init__(self) -> None:
        self.payloads: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()

    def payload(self, result: str) -> None:
        self.payloads[result] += 1

    def alert(self, outcome: str) -> None:
        self.alerts[outcome] += 1

    def render(self) -> str:
        lines = [
            "# HELP incident_bot_payloads_total Payloads received on POST /alerts, by result.",
            "# TYPE incident_bot_payloads_total counter",
            *(
                f'incident_bot_payloads_total{{result="{result}"}} {count}'
                for result, count in sorted(self.payloads.items())
            ),
            "# HELP incident_bot_alerts_total Alerts recorded, by what they did to incidents.",
            "# TYPE incident_bot_alerts_total counter",
            *(
                f'incident_bot_alerts_total{{outcome="{outcome}"}} {count}'
                for outcome, count in sorted(self.alerts.items())
            ),
        ]
        return "\n".join(lines) + "\n"
