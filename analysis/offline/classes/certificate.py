"""Certificate expiry and TLS failures. An ACM expiry alarm is a deadline, not an outage; a
handshake failing now is one, and the text names the host whose certificate to inspect.
"""

from __future__ import annotations

import re

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    find_name,
    make_step,
    region_flag,
    sh,
    steps_of,
)
from analysis.offline.facts import Facts
from analysis.offline.model import Evidence, Playbook

_CERT_HOST = re.compile(
    r", not ([a-z0-9][\w.-]*\.[a-z]{2,})|https://([a-z0-9][\w.-]*\.[a-z]{2,})"
    r"|(?:certificate for|host|hostname|domain|servername|connect(?:ing)? to)[ :=]+"
    r"['\"]?([a-z0-9][\w-]*(?:\.[\w-]+)+)",
    re.IGNORECASE,
)


def _expiring(
    f: Facts, ev: Evidence
) -> tuple[str, tuple[RemediationStep, ...], str, str, bool, tuple[str, ...]]:
    """A certificate close to expiry: a deadline to meet, not an outage yet."""
    cert = f"ACM certificate `{f.certificate_arn}`" if f.certificate_arn else "A certificate"
    root = (
        f"{cert} is approaching expiry ({ev.lead}). ACM renews the certificates it issued "
        "by itself only while their DNS validation records still resolve and the "
        "certificate is in use, and never renews imported ones; this close to expiry, one "
        "of those conditions has most likely failed."
    )
    steps = steps_of(
        make_step(
            "Read its status, expiry date and renewal state.",
            f"aws acm describe-certificate --certificate-arn {sh(f.certificate_arn)} --query "
            "'Certificate.{Status:Status,NotAfter:NotAfter,Type:Type,"
            f"Renewal:RenewalSummary}}'{region_flag(f)}"
            if f.certificate_arn
            else f"aws acm list-certificates --query 'CertificateSummaryList[].[DomainName,"
            f"NotAfter,Status]' --output table{region_flag(f)}",
        ),
        make_step(
            "If it is AMAZON_ISSUED, make sure the DNS validation CNAMEs still exist in the "
            "hosted zone; ACM retries renewal once they resolve."
        ),
        make_step(
            "If it is IMPORTED, issue a new certificate from its authority and re-import it "
            "under the same ARN before NotAfter."
        ),
    )
    stakes = (
        "nothing fails until the expiry date, but on that day every TLS client refuses the "
        "connection at once"
    )
    outage = False
    impact = (
        "Nothing breaks yet. On the expiry date every client of the endpoints that use this "
        "certificate (load balancers, CloudFront, API Gateway domains) will refuse to "
        "connect, all at once, so the fix has a deadline rather than a blast radius today."
    )
    check_first = (
        "The certificate's NotAfter date and its renewal status",
        "Whether it is ACM-issued (auto-renews) or imported (does not)",
        "Which load balancers, distributions or domains use it",
    )
    return root, steps, impact, stakes, outage, check_first


def _failing(
    f: Facts, ev: Evidence, host: str | None
) -> tuple[str, tuple[RemediationStep, ...], str, str, bool, tuple[str, ...]]:
    """A TLS handshake that fails now: find which side's certificate and why."""
    where = f"`{host}`" if host else "the endpoint it calls"
    root = (
        f"The certificate of {where} fails verification for {f.service} ({ev.lead}): it "
        "has expired, does not cover the name used, or its chain is incomplete or not "
        "trusted by the client. Connections are refused until one of those is fixed."
    )
    steps = steps_of(
        make_step(
            f"Inspect the certificate {where} serves: dates, names and issuer.",
            f"echo | openssl s_client -connect {sh(host + ':443')} -servername {sh(host)} "
            "2>/dev/null | openssl x509 -noout -subject -issuer -dates -ext subjectAltName"
            if host
            else None,
        ),
        make_step(
            "If it expired, renew and deploy it (or fix the ACM renewal); if the name does "
            "not match, call the endpoint by a name the certificate covers; if the chain is "
            "incomplete, serve the intermediate certificates too."
        ),
        make_step(
            "If the certificate is valid, the client's trust store is the problem: update "
            "its CA bundle (old base images lack newer roots)."
        ),
    )
    stakes = "TLS clients refuse every connection until the certificate is fixed"
    outage = True
    impact = (
        f"Every TLS connection from {f.service} to {where} is refused by the client, so "
        "each feature that depends on it is down; it does not recover by itself."
    )
    check_first = (
        f"The certificate {where} serves now: its NotAfter date and the names it covers",
        f"Whether other clients of {where} fail too (their problem) or only this one "
        "(its trust store)",
        f"Certificate or endpoint changes just before {f.since}",
    )
    return root, steps, impact, stakes, outage, check_first


def playbook(f: Facts, ev: Evidence) -> Playbook:
    host = find_name(_CERT_HOST, f.evidence)
    expiring = f.certificate_arn is not None or any(
        m.name.lower() == "daystoexpiry" for m in f.metrics
    )
    if expiring:
        root, steps, impact, stakes, outage, check_first = _expiring(f, ev)
    else:
        root, steps, impact, stakes, outage, check_first = _failing(f, ev, host)
    return Playbook(
        root_cause=root,
        hypothesis=("A certificate problem: expiry, a name mismatch or an untrusted chain."),
        impact=impact,
        stakes=stakes,
        outage=outage,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=check_first,
    )
