"""The failure knowledge as data: failure classes and error signatures, read from YAML.

Knowledge of what an error text means (its cause, the check that tells it from look-alikes,
the fix, where the vendor documents it) changes far more often than the code that scores and
renders it, so it lives in `library/*.yaml`, one file per domain, validated here on load. A
typo in a pattern or a command that names an unknown value fails at import, not at 3 a.m.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analysis.offline.model import STRONG, Signal

LIBRARY = "library"
CLASSES_FILE = "classes.yaml"
# Values a command or action may name: facts of the alert (see `template.py`).
TEMPLATE_VALUES = frozenset(
    {
        "alarm", "function", "instance", "db_instance", "db_cluster", "queue", "table",
        "load_balancer", "api", "cluster", "service", "log_group", "host", "pod", "namespace",
        "region", "region_flag", "t_start", "t_end", "since",
    }
)  # fmt: skip
TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")
"""How a command or action names a value: `{name}`."""


class Pattern(BaseModel):
    """One regular expression and how strongly a match points at its signature: 3 when the
    text is the vendor's own error message, 1.5-2 for a strong hint, 1 for a direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regex: str
    weight: float = Field(default=STRONG, ge=0.5, le=STRONG)
    ignore_case: bool = True

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value

    def signal(self) -> Signal:
        return Signal(re.compile(self.regex, re.IGNORECASE if self.ignore_case else 0), self.weight)


class Step(BaseModel):
    """A remediation step: an imperative action and, where one exists, a command to paste."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(min_length=10)
    command: str | None = None


class Check(Step):
    """The discriminating check: it must come with a command, or it is advice, not a check."""

    command: str = Field(min_length=3)


class Signature(BaseModel):
    """One known error: what it looks like, what it means, how to confirm it, how to fix it,
    and the vendor page that documents it (never an incident write-up: those are the
    benchmark's test data, see bench/offline_eval.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]+$")
    failure_class: str = Field(alias="class")
    patterns: tuple[Pattern, ...] = Field(min_length=1)
    cause: str = Field(min_length=10, max_length=240)
    check: Check
    remediation: tuple[Step, ...] = Field(min_length=1, max_length=4)
    source: str = Field(pattern=r"^https://\S+$")
    domain: str = ""

    @field_validator("cause")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("the cause is one line")
        return value.strip()

    @model_validator(mode="after")
    def _templates_name_known_values(self) -> Signature:
        groups = {g for p in self.patterns for g in re.compile(p.regex).groupindex}
        for step in (self.check, *self.remediation):
            for text in (step.action, step.command or ""):
                unknown = set(TEMPLATE_FIELD.findall(text)) - TEMPLATE_VALUES - groups
                if unknown:
                    raise ValueError(f"{self.id}: unknown template values {sorted(unknown)}")
        return self

    @cached_property
    def signals(self) -> tuple[Signal, ...]:
        return tuple(pattern.signal() for pattern in self.patterns)


class ClassSpec(BaseModel):
    """A failure class as data. Classes with a module in `classes/` render their own text;
    the others are rendered from their signature by `generic.py`, using `stakes`, `outage`
    and `impact` (which may name `{service}`). `first_check` is the class's own first step,
    used when a class module can phrase none with a command for this alert (it names no host,
    no log group), so the first step always has one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str
    specific: bool
    base_confidence: float = Field(ge=0.1, le=0.3)
    metrics: frozenset[str] = frozenset()
    symptom_note: str = ""
    signals: tuple[Pattern, ...] = ()
    stakes: str = ""
    outage: bool = False
    impact: str = ""
    first_check: Check | None = None


def _read(name: str) -> Any:
    return yaml.safe_load(resources.files(__package__).joinpath(LIBRARY, name).read_text())


def load_classes() -> tuple[ClassSpec, ...]:
    """The class definitions, in rank order for ties (specific classes first)."""
    return tuple(ClassSpec.model_validate(entry) for entry in _read(CLASSES_FILE))


def load_signatures(classes: frozenset[str]) -> tuple[Signature, ...]:
    """Every signature of every domain file; ids are unique and classes must exist."""
    library = resources.files(__package__).joinpath(LIBRARY)
    found: list[Signature] = []
    for item in sorted(library.iterdir(), key=lambda entry: entry.name):
        if not item.name.endswith(".yaml") or item.name == CLASSES_FILE:
            continue
        domain = item.name.removesuffix(".yaml")
        for entry in yaml.safe_load(item.read_text()) or []:
            found.append(Signature.model_validate({**entry, "domain": domain}))
    ids = [signature.id for signature in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    strays = sorted({s.failure_class for s in found} - classes)
    if duplicates or strays:
        raise ValueError(f"signature library: duplicate ids {duplicates}, unknown classes {strays}")
    return tuple(found)
