"""ReportStore on DynamoDB: index queries summed here, DynamoDB having no GROUP BY, into the
rows of the period figures (`incidents.figures` turns the rows into figures) and cost totals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from incidents.dynamodb.incidents import alert_of
from incidents.dynamodb.table import DynamoTable, dump
from incidents.figures import KeyAlerts, PeriodRows, measure, noisiest, period_figures
from incidents.models import Incident, IncidentStatus, Severity
from incidents.store import CostTotal, PeriodFigures
from incidents.times import as_utc, utc_text


class DynamoReports(DynamoTable):
    def cost_totals(self, since: datetime) -> list[CostTotal]:
        """A query of the analyses' time index from `since` on, summed here per day and
        source: DynamoDB has no GROUP BY. The body is not fetched."""
        totals: dict[tuple[str, str], list[Any]] = {}
        for page in self._pages(
            IndexName="kind",
            KeyConditionExpression="kind_pk = :p AND kind_sk >= :since",
            ExpressionAttributeValues=dump({":p": "ANALYSIS", ":since": utc_text(since)}),
            ProjectionExpression="#c, #s, #a, #k, #u",
            ExpressionAttributeNames={
                "#c": "created_at",
                "#s": "source",
                "#a": "analyzer",
                "#k": "cached",
                "#u": "cost_usd",
            },
        ):
            for item in page:
                total = totals.setdefault(
                    (str(item["created_at"])[:10], str(item["source"])), [0, 0, 0, Decimal(0)]
                )
                total[0] += 1
                total[1] += int(not item["cached"] and item["analyzer"] == "claude")
                total[2] += int(bool(item["cached"]))
                total[3] += item["cost_usd"]
        return [
            CostTotal(
                day=day,
                source=source,
                analyses=count,
                model_calls=calls,
                cached=cached,
                cost_usd=float(cost),
            )
            for (day, source), (count, calls, cached, cost) in sorted(totals.items())
        ]

    def period_figures(
        self, since: datetime, until: datetime, *, top: int = 5, active_shown: int = 10
    ) -> PeriodFigures:
        """The incidents opened in the period (time index), the active ones (their two status
        partitions), the resolved ones opened before `until`, and the period's alerts (one
        time-index partition per severity). Resolution and acknowledgement times are in no
        index key, so the resolved partition is read whole up to `until`, incident data only:
        a cost that grows with the incidents ever resolved, where SQLite reads only the
        period's."""
        start, end = utc_text(since), utc_text(until)
        # Keys are `{time}#{id}`, never equal to a bare time: BETWEEN is [start, end) here.
        opened = Counter(i.severity for i in self._incidents("kind", "INCIDENT", start, end))
        active = [
            incident
            for status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)
            for incident in self._incidents("group", f"STATUS#{status.value}", None, None)
        ]
        closed = self._incidents("group", f"STATUS#{IncidentStatus.RESOLVED.value}", None, end)
        resolved = [i for i in closed if _within(i.resolved_at, since, until)]
        fingerprints, sources = self._alerts_per_key(start, end)
        newest = [row.newest_incident for row in noisiest(fingerprints, top)]
        rows = PeriodRows(
            opened=opened,
            resolved={
                severity: measure((i for i in resolved if i.severity is severity), _resolved_at)
                for severity in Severity
            },
            acknowledged=measure(
                (i for i in (*active, *closed) if _within(i.acknowledged_at, since, until)),
                _acknowledged_at,
            ),
            fingerprints=fingerprints,
            sources=sources,
            active=len(active),
            active_first=active,
            titles={
                str(item["pk"]).removeprefix("INC#"): Incident.model_validate_json(
                    item["data"]
                ).title
                for item in self._batch_get([(f"INC#{id_}", "INCIDENT") for id_ in newest])
            },
        )
        return period_figures(rows, top=top, active_shown=active_shown)

    def _alerts_per_key(self, start: str, end: str) -> tuple[list[KeyAlerts], list[KeyAlerts]]:
        """The period's alerts that belong to an incident, per fingerprint (with their distinct
        incidents and the incident of the newest) and per source."""
        alerts = Counter[str]()
        sources = Counter[str]()
        incidents_of: dict[str, set[str]] = {}
        latest: dict[str, tuple[str, str]] = {}
        for severity in Severity:
            for item in self._index_range(f"ALERT#{severity.value}", start, end):
                alert = alert_of(item)
                if not item.get("incident_id"):
                    continue
                incident_id = str(item["incident_id"])
                alerts[alert.fingerprint] += 1
                sources[alert.source] += 1
                incidents_of.setdefault(alert.fingerprint, set()).add(incident_id)
                newest = (str(item["kind_sk"]), incident_id)
                latest[alert.fingerprint] = max(latest.get(alert.fingerprint, newest), newest)
        fingerprints = [
            KeyAlerts(key, count, len(incidents_of[key]), latest[key][1])
            for key, count in alerts.items()
        ]
        return fingerprints, [KeyAlerts(key, count) for key, count in sources.items()]

    def _incidents(
        self, index: str, partition: str, start: str | None, end: str | None
    ) -> list[Incident]:
        """The incidents of one index partition whose sort key (opening time, then id) is in
        [start, end), either bound open when None; only their data is fetched."""
        condition = f"{index}_pk = :p"
        values: dict[str, Any] = {":p": partition}
        if start is not None and end is not None:
            condition += f" AND {index}_sk BETWEEN :start AND :end"
            values |= {":start": start, ":end": end}
        elif end is not None:
            condition += f" AND {index}_sk < :end"
            values[":end"] = end
        items = self._items(
            None,
            IndexName=index,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=dump(values),
            ProjectionExpression="#d",
            ExpressionAttributeNames={"#d": "data"},
        )
        return [Incident.model_validate_json(item["data"]) for item in items]

    def _index_range(self, partition: str, start: str, end: str) -> Iterator[dict[str, Any]]:
        """The items of one `kind` partition from `start` to `end`, page by page, without the
        keys and attributes no figure reads."""
        for page in self._pages(
            IndexName="kind",
            KeyConditionExpression="kind_pk = :p AND kind_sk BETWEEN :start AND :end",
            ExpressionAttributeValues=dump({":p": partition, ":start": start, ":end": end}),
            ProjectionExpression="incident_id, kind_sk, alert, alert_z",
        ):
            yield from page


def _within(moment: datetime | None, since: datetime, until: datetime) -> bool:
    """In the half-open period [since, until), for the times no index key holds."""
    return moment is not None and as_utc(since) <= as_utc(moment) < as_utc(until)


def _resolved_at(incident: Incident) -> datetime | None:
    return incident.resolved_at


def _acknowledged_at(incident: Incident) -> datetime | None:
    return incident.acknowledged_at
