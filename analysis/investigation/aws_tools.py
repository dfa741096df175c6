"""The built-in read-only AWS tools of the investigation, as one `ToolSource`.

Each incident gets tools scoped by its alert: its region, its alarm, its own log group, and
its time, at which every window is anchored. The tools live by kind in `aws_logs`,
`aws_metrics` and `aws_changes`; what they share (the scope, the window cap, AWS errors in one
line) is in `aws_scope`, and strict argument reading in `arguments`. Every call is one API call
that reads (but StopQuery, which ends the tool's own Logs Insights query) and that the bot's
IAM policy grants by name (deploy/template.yaml).
"""

from __future__ import annotations

from analysis.aws_clients import ClientFactory
from analysis.investigation.aws_changes import changes_tools
from analysis.investigation.aws_logs import logs_tools
from analysis.investigation.aws_metrics import metrics_tools
from analysis.investigation.aws_scope import AwsError, AwsScope, AwsToolLimits
from analysis.investigation.registry import ToolRegistry
from incidents.models import Alert, Incident

__all__ = ["AwsError", "AwsToolLimits", "AwsTools"]


class AwsTools:
    """`logs_insights_query`, `log_events` (only when the incident may read some log group),
    `metric_data`, `describe_alarms`, `alarm_history`, `recent_changes` and `deployments`."""

    def __init__(self, clients: ClientFactory, config: AwsToolLimits | None = None) -> None:
        self.clients = clients
        self.config = config or AwsToolLimits()

    def tools_for(self, incident: Incident, alert: Alert) -> ToolRegistry:
        scope = AwsScope.of(self.clients, self.config, alert)
        return ToolRegistry([*logs_tools(scope), *metrics_tools(scope), *changes_tools(scope)])
