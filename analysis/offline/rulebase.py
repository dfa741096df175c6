"""The rule base: each failure class joined to the code that renders it, and the signatures.

`RULES` holds the classes whose text truly branches on facts (which engine refused, whether
a Lambda or a pod was killed, which load-balancer metric alarmed), one module each under
`classes/`. Every other class is data only: its signatures carry the cause, the check and the
fix, and `generic.py` renders them. `CLASSES` is all of them, in the order ties are broken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from analysis.offline.classes import (
    auth,
    certificate,
    connection_pool,
    cpu_saturation,
    deploy_regression,
    disk_full,
    dns,
    http_5xx,
    oom,
    queue_backlog,
    throttling,
    timeouts,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook, Signal
from analysis.offline.signatures import ClassSpec, Signature, load_classes, load_signatures

_MODULES: dict[str, ModuleType] = {
    module.__name__.rsplit(".", 1)[-1]: module
    for module in (
        connection_pool, oom, disk_full, throttling, auth, certificate, dns, deploy_regression,
        timeouts, http_5xx, queue_backlog, cpu_saturation,
    )
}  # fmt: skip


@dataclass(frozen=True)
class FailureClass:
    """One failure class: its definition from `classes.yaml` and, for the classes that need
    one, the playbook function of its module.

    `specific` classes name a cause; the others (timeouts, 5xx, CPU, backlog) are usually a
    symptom, and `symptom_note` says why when one of them is the runner-up.
    """

    spec: ClassSpec
    signals: tuple[Signal, ...]
    playbook: Callable[[Facts, Evidence], Playbook] | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def specific(self) -> bool:
        return self.spec.specific

    @property
    def metrics(self) -> frozenset[str]:
        return self.spec.metrics

    @property
    def base_confidence(self) -> float:
        return self.spec.base_confidence

    @property
    def symptom_note(self) -> str:
        return self.spec.symptom_note


def _build() -> tuple[tuple[FailureClass, ...], tuple[Signature, ...]]:
    classes = tuple(
        FailureClass(
            spec,
            tuple(pattern.signal() for pattern in spec.signals),
            _MODULES[spec.name].playbook if spec.name in _MODULES else None,
        )
        for spec in load_classes()
    )
    missing = set(_MODULES) - {c.name for c in classes}
    if missing:
        raise ValueError(f"classes.yaml lacks the coded classes {sorted(missing)}")
    return classes, load_signatures(frozenset(c.name for c in classes))


CLASSES, SIGNATURES = _build()
RULES: tuple[FailureClass, ...] = tuple(c for c in CLASSES if c.playbook is not None)
UNKNOWN = "unknown"
