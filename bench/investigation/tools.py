"""The tools a scenario's investigation gets: the bot's own, as bot/components builds them,
with boto3 pointed at moto."""

from __future__ import annotations

from pathlib import Path

from analysis.aws_clients import BotoClients, ClientFactory
from analysis.investigation.aws_tools import AwsToolLimits, AwsTools
from analysis.investigation.past_incidents import StoreTools
from analysis.investigation.registry import CombinedTools, ToolSource
from bench.investigation.scenario import Scenario
from incidents.sqlite import SqliteStore
from tests.fakes.moto_server import REGION, boto3_env


def boto3_environment(endpoint: str, folder: Path) -> dict[str, str]:
    """What sends boto3 to moto with fake credentials, the developer's AWS files hidden."""
    return boto3_env(endpoint, folder / "no-aws-config")


def clients() -> ClientFactory:
    return BotoClients(region=REGION)


def tools_for(store: SqliteStore, clients: ClientFactory, scenario: Scenario) -> ToolSource:
    """As `bot.components.build_engine` gives them, `INVESTIGATION_LOG_GROUPS` being the
    scenario's allow-list."""
    limits = AwsToolLimits(log_groups=tuple(scenario.seed.log_group_allow_list))
    return CombinedTools(StoreTools(store), AwsTools(clients, limits))
