"""What one scenario of the investigation benchmark is, as written in its file under
`bench/data/investigate/`: the alert, the AWS state behind it, the true cause, and the
recording of a model investigating it.

Times are minutes relative to the alert (`-12` is twelve minutes before the alarm fired), so
a scenario replays against a moto seeded "now", within the two weeks CloudWatch accepts.
Every model is strict (`extra="forbid"`): a misspelt key is an error when the file loads, not
a seed that silently lacks something.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DATA = Path(__file__).resolve().parent.parent / "data" / "investigate"
FIXTURES = Path(__file__).resolve().parent.parent.parent / "tests" / "fixtures" / "payloads"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogsAlert(_Strict):
    """A CloudWatch Logs subscription delivery: the fixture's document with these log events,
    each `[minutes, message]`, gzip'd and base64-encoded the way the subscription sends it."""

    log_group: str
    log_stream: str
    events: list[tuple[float, str]] = Field(min_length=1)


class AlertSpec(_Strict):
    """The alert, from a real sender's payload in tests/fixtures/payloads (`fixture`):
    an SNS-delivered alarm gets `alarm` merged into the alarm JSON of its `Message`
    (`Trigger` merged key by key); a logs subscription gets `logs`."""

    fixture: str
    alarm: dict[str, Any] | None = None
    logs: LogsAlert | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> AlertSpec:
        if (self.alarm is None) == (self.logs is None):
            raise ValueError("an alert has exactly one of `alarm` and `logs`")
        if not (FIXTURES / self.fixture).is_file():
            raise ValueError(f"no fixture payload {self.fixture!r} in tests/fixtures/payloads")
        return self


class LogStream(_Strict):
    name: str
    events: list[tuple[float, str]] = Field(description="[minutes, message]")


class LogGroup(_Strict):
    name: str
    streams: list[LogStream] = Field(min_length=1)


class Segment(_Strict):
    """A run of one-minute datapoints from `start` to `end` minutes (inclusive) around
    `value` (or climbing from `value` to `ramp_to`), varied by up to `jitter` (a fraction)
    with a generator seeded by the scenario."""

    start: int
    end: int
    value: float
    ramp_to: float | None = None
    jitter: float = 0.0

    def at(self, minute: int) -> float:
        if self.ramp_to is None or self.end == self.start:
            return self.value
        share = (minute - self.start) / (self.end - self.start)
        return self.value + (self.ramp_to - self.value) * share


class Metric(_Strict):
    namespace: str
    name: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    unit: str = "None"
    segments: list[Segment] = Field(min_length=1)


class AlarmSpec(_Strict):
    """Another alarm in the account (the alert's own is made from its payload)."""

    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: str = "Average"
    threshold: float
    comparison: str = "GreaterThanThreshold"
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"] = "OK"
    reason: str = "Threshold Crossed: no datapoints were breaching."


class HistoryItem(_Strict):
    """A state change of the alert's own alarm before this one (for flapping alarms)."""

    at: float
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str


class Change(_Strict):
    """A CloudTrail write event."""

    at: float
    event: str
    source: str
    user: str
    resources: list[str] = Field(default_factory=list)
    resource_type: str = ""
    read_only: bool = False


class Deployment(_Strict):
    at: float
    task_definition: str
    status: Literal["PRIMARY", "ACTIVE", "INACTIVE"]
    rollout_state: Literal["COMPLETED", "IN_PROGRESS", "FAILED"]
    running: int
    desired: int


class EcsService(_Strict):
    cluster: str
    service: str
    images: dict[str, str] = Field(description="task definition family:revision -> image")
    deployments: list[Deployment] = Field(min_length=1)
    events: list[tuple[float, str]] = Field(default_factory=list)


class LambdaVersion(_Strict):
    at: float
    description: str = ""
    timeout: int = 3
    memory: int = 128


class LambdaFunction(_Strict):
    name: str
    runtime: str = "python3.12"
    versions: list[LambdaVersion] = Field(min_length=1, description="oldest first")


class PastIncident(_Strict):
    """An earlier firing of the same alert in our store, for `past_incidents`: resolved by
    the on-call engineer with `note` after `resolved_after_minutes`."""

    days_ago: float
    resolved_after_minutes: float = 30
    note: str = ""


class Seed(_Strict):
    log_groups: list[LogGroup] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    alarms: list[AlarmSpec] = Field(default_factory=list)
    alarm_history: list[HistoryItem] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list)
    ecs: list[EcsService] = Field(default_factory=list)
    lambdas: list[LambdaFunction] = Field(default_factory=list)
    past_incidents: list[PastIncident] = Field(default_factory=list)
    log_group_allow_list: list[str] = Field(
        default_factory=list, description="INVESTIGATION_LOG_GROUPS for this scenario"
    )


class Cause(_Strict):
    """The true cause, and how a conclusion is scored against it: the conclusion names it when
    its `root_cause`, lower-cased with whitespace runs collapsed, contains any of `keywords`
    (each likewise normalised). Keywords are the specific facts only the true cause has (the
    task definition revision, the policy name, the flag), never words a decoy shares."""

    text: str
    keywords: list[str] = Field(min_length=1)


class Call(_Strict):
    """One tool call of a recorded answer; `error` says whether the scenario means it to fail
    (a wrong log group, a bad argument), so a failure nobody meant shows up."""

    tool: str
    input: dict[str, Any]
    error: bool = False


class Step(_Strict):
    """One recorded answer of the model: optional text, then its tool calls in order (the
    conclusion is a call to `record_analysis`); `usage` as the API reported it, when live."""

    text: str = ""
    calls: list[Call] = Field(default_factory=list)
    usage: dict[str, Any] | None = None
    seconds: float | None = Field(default=None, description="the request's latency, when live")

    @model_validator(mode="after")
    def _says_something(self) -> Step:
        if not self.text and not self.calls:
            raise ValueError("a recorded answer has text or tool calls")
        return self


class Recording(_Strict):
    model: str = Field(description="`scripted` for a hand-written recording, else the model id")
    steps: list[Step] = Field(min_length=1)


class Expect(_Strict):
    stopped: Literal["concluded", "step limit", "budget"] = "concluded"


class Scenario(_Strict):
    name: str
    title: str
    alert: AlertSpec
    seed: Seed
    cause: Cause
    expect: Expect = Field(default_factory=Expect)
    recording: Recording


def load(path: Path) -> Scenario:
    """One scenario file (YAML or JSON), validated; its name must be its file's stem."""
    text = path.read_text()
    document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    scenario = Scenario.model_validate(document)
    if scenario.name != path.stem:
        raise ValueError(f"{path.name}: name {scenario.name!r} is not the file's stem")
    return scenario


def paths(folder: Path = DATA) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def load_all(folder: Path = DATA) -> list[Scenario]:
    return [load(path) for path in paths(folder)]


def save_recording(path: Path, recording: Recording, expect: Expect) -> None:
    """Write a new recording, and how its run ended, into the scenario's file, the rest of it
    kept as it was (in its key order; PyYAML drops comments, so the scenario files have none)."""
    document = yaml.safe_load(path.read_text())
    document["expect"] = expect.model_dump(mode="json")
    document["recording"] = recording.model_dump(mode="json", exclude_defaults=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))
