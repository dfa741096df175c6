"""DNS resolution failures. A temporary failure (resolver overload, SERVFAIL) and a name that
does not exist (NXDOMAIN) have different fixes; the text names the host and its zone.
"""

from __future__ import annotations

import re

from analysis.offline.commands import (
    alarm_history_step,
    cap,
    find_name,
    iso,
    make_step,
    sh,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook

_DNS_HOST = re.compile(
    r"(?:ENOTFOUND|EAI_AGAIN|getaddrinfo \w+)\s+([\w.-]+\.[a-z]{2,})"
    r"|Could not resolve host(?:name)?:?\s+([\w.-]+\.[a-z]{2,})"
    r"|UnknownHostException:\s*([\w.-]+\.[a-z]{2,})"
    r"|lookup ([\w.-]+\.[a-z]{2,})(?: on [\w.:\[\]]+)?: no such host"
    r"|(?:resolve|resolving) ['\"]?([\w.-]+\.[a-z]{2,})",
    re.IGNORECASE,
)
_DNS_TEMPORARY = re.compile(r"EAI_AGAIN|Temporary failure in name resolution|SERVFAIL", re.I)


def playbook(f: Facts, ev: Evidence) -> Playbook:
    host = find_name(_DNS_HOST, f.evidence)
    temporary = bool(_DNS_TEMPORARY.search(f.evidence))
    name = f"`{host}`" if host else "a dependency's hostname"
    if temporary:
        why = (
            "The resolver did not answer in time, a temporary failure rather than a missing "
            "record: the VPC resolver allows each network interface 1024 packets per second, "
            "and CoreDNS or a local resolver can be overloaded or restarting."
        )
    else:
        why = (
            "The name does not exist for this resolver: the record was deleted or renamed, a "
            "private hosted zone is not associated with the caller's VPC, or the configured "
            "name has a typo."
        )
    root = f"{cap(f.service)} cannot resolve {name} ({ev.lead}). {why}"
    zone = host.split(".", 1)[1] if host and host.count(".") >= 2 else host
    steps = steps_of(
        make_step(
            f"Resolve {name} from where the caller runs, and from a public resolver to compare.",
            f"dig +short {sh(host)}; dig +short {sh(host)} @1.1.1.1" if host else None,
        ),
        make_step(
            f"Check the record in Route 53, if it hosts `{zone}` (then list-resource-record-sets "
            "on the zone it returns).",
            f"aws route53 list-hosted-zones-by-name --dns-name {sh(zone)} --max-items 1",
        )
        if zone
        else None,
        make_step(
            "Look for recent DNS changes (record edits, zone associations).",
            f"aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventSource,"
            "AttributeValue=route53.amazonaws.com --start-time "
            f"{iso(f.day_before)} --max-results 50 --query "
            "'Events[].[EventTime,EventName,Username]' --output table --region us-east-1",
        ),
        make_step(
            "On Kubernetes, check CoreDNS for errors and restarts.",
            "kubectl -n kube-system logs -l k8s-app=kube-dns --since=30m | tail -50",
        )
        if f.pod or temporary
        else None,
        make_step(
            "Cache resolutions in the client (or run a node-local DNS cache) so one slow "
            "lookup does not fail the request."
        )
        if temporary
        else make_step(
            "Restore the record or the zone association; then lower its TTL while it settles."
        ),
    )
    return Playbook(
        root_cause=root,
        hypothesis=f"DNS resolution failure for {name}.",
        impact=(
            f"Every call from {f.service} that needs {name} fails before it is even sent; "
            "anything else resolving the same name from the same network fails alike."
        ),
        stakes="calls to a name that does not resolve fail before they start",
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            f"Does {name} resolve from the caller's network right now?",
            "Recent Route 53 record or zone changes",
            "Whether other services fail to resolve the same name",
        ),
    )
