"""Connection-pool exhaustion. The text branches on the engine (PostgreSQL and MySQL show who
holds connections differently), on who refuses (the server's limit is everyone's outage, a
client pool one service's) and on the role and code location the error names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analysis.models import RemediationStep
from analysis.offline.commands import (
    alarm_history_step,
    cap,
    dim,
    find_name,
    make_step,
    metric_command,
    steps_of,
)
from analysis.offline.facts import (
    DB_ROLE,
    TIMEOUT_AFTER,
    Facts,
    clean_name,
)
from analysis.offline.model import Evidence, Playbook

_POSTGRES = re.compile(
    r"postgres|psql|libpq|\bpg[_ ]|sqlstate 53300|remaining connection slots|too many clients",
    re.IGNORECASE,
)
_MYSQL = re.compile(r"mysql|mariadb|ER_CON_COUNT|max_user_connections", re.IGNORECASE)
_SERVER_LIMIT = re.compile(
    r"too many (?:client )?connections|too many clients|remaining connection slots|"
    r"ER_CON_COUNT|max_user_connections|max number of clients",
    re.IGNORECASE,
)
_CODE_LOCATION = re.compile(
    r"\bat\s+(?:[\w.$<>]+\s?\()?(?:[^\s()]*/)?([\w.-]+\.(?:js|mjs|cjs|ts|java|kt|py|go|rb|cs|php):\d+)"
    r"|File \"(?:[^\"]*/)?([\w.-]+\.py)\", line (\d+)"
)


@dataclass(frozen=True)
class Engine:
    """The SQL that answers "who holds the connections" on one database engine."""

    name: str
    sessions: str
    limits: str
    idle_cleanup: str
    proxy: str


def _engine(text: str, role: str | None) -> Engine | None:
    who = f"'{role}'" if role else None
    if _POSTGRES.search(text):
        role_filter = f"usename = {who} AND " if who else ""
        return Engine(
            name="PostgreSQL",
            sessions="SELECT count(*), usename, state FROM pg_stat_activity GROUP BY 2,3;",
            limits=(
                f"SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = {who}; "
                "SHOW max_connections;"
                if who
                else "SHOW max_connections; SHOW superuser_reserved_connections;"
            ),
            idle_cleanup=(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {role_filter}"
                "state = 'idle in transaction' AND state_change < now() - interval '5 minutes';"
            ),
            proxy="RDS Proxy or pgbouncer (transaction pooling)",
        )
    if _MYSQL.search(text):
        user_filter = f"user = {who} AND " if who else ""
        return Engine(
            name="MySQL",
            sessions=(
                "SELECT user, command, COUNT(*) FROM information_schema.processlist "
                "GROUP BY user, command;"
            ),
            limits=(
                "SHOW VARIABLES LIKE 'max%connections'; SHOW STATUS LIKE 'Max_used_connections';"
            ),
            idle_cleanup=(
                "SELECT CONCAT('KILL ', id, ';') FROM information_schema.processlist WHERE "
                f"{user_filter}command = 'Sleep' AND time > 300;"
            ),
            proxy="RDS Proxy or ProxySQL",
        )
    return None


def _code_location(text: str) -> str | None:
    match = _CODE_LOCATION.search(text)
    if not match:
        return None
    if match.group(1):
        return clean_name(match.group(1))
    return clean_name(f"{match.group(2)}:{match.group(3)}")


def _text(
    f: Facts, ev: Evidence, engine: Engine | None, role: str | None, call: str, gives_up: str
) -> tuple[str, str, str]:
    """Root cause, impact and stakes: an alarm on the connection count is a warning, a server
    refusing connections is an outage for every client, a client pool running dry is one
    service's problem."""
    db = engine.name if engine else "the database"
    db_kind = engine.name if engine else "database"
    as_role = f" as `{role}`" if role else ""
    rds = f.db_instance or f.db_cluster
    server_side = bool(_SERVER_LIMIT.search(f.evidence))
    watched = any(m.name.lower() == "databaseconnections" for m in f.metrics)
    if watched and not server_side:
        where = f"`{rds}`" if rds else "the database"
        root = (
            f"{cap(f.subject or 'the database')} holds more connections than its alarm "
            f"allows ({ev.lead}): it is heading for max_connections, after which it refuses "
            "new ones and every request that needs one fails. Connections that leak or idle "
            "in pools, pools that together exceed the limit, or a scale-out that multiplied "
            "them are the usual causes."
        )
        impact = (
            f"Nothing is refused yet if the count is still below max_connections; once it "
            f"reaches it, every client of {where} that needs a new connection fails, whichever "
            "service it belongs to."
        )
        stakes = (
            "at max_connections every request that needs a new connection fails, for every "
            "service on the database"
        )
    elif server_side:
        limit = f" for role `{role}`: the role's connection limit" if role else ": its limit"
        root = (
            f"{cap(db)} is refusing new connections{limit} is used up ({ev.lead}), so {call} "
            f"fails and {gives_up}. This is connection-pool exhaustion, most often from "
            "connections the application leaks (checked out, never returned), pools that "
            "together exceed the limit, or a scale-out that multiplied the pools."
        )
        impact = (
            f"Requests that need a new {db_kind} connection{as_role} fail or wait until one is "
            f"released, so {f.service} returns errors or stalls. Anything else that connects"
            f"{as_role} to the same database is refused too, so the blast radius can reach "
            "beyond this service."
        )
        stakes = (
            f"while {db} refuses new connections, every request that needs one fails, so users "
            "see errors now rather than later"
        )
    else:
        root = (
            f"The application's {db_kind} connection pool is exhausted ({ev.lead}): every "
            f"connection is checked out, so {call} waits and {gives_up}. Connections are held "
            "too long (slow queries, long transactions, leaks) or the pool is too small for the "
            "load."
        )
        impact = (
            f"Requests to {f.service} that need a {db_kind} connection queue behind the pool "
            "and fail once they wait too long; the database itself may be healthy, so other "
            "services are unlikely to be affected unless they share the same pool settings."
        )
        stakes = (
            "while the pool has no free connection, every request that needs one waits and then "
            "fails"
        )
    return root, impact, stakes


def _steps(
    f: Facts, engine: Engine | None, role: str | None, location: str | None
) -> tuple[RemediationStep, ...]:
    """Who holds the connections first, then the limits and the trend, relief now, and the
    lasting fixes (leaks, pool sizing, a proxy)."""
    rds = f.db_instance or f.db_cluster
    of_role = f"`{role}` " if role else ""
    if rds:
        rds_action = f"Graph DatabaseConnections on `{rds}` for the hour around the alert"
        dimension = dim("DBInstanceIdentifier" if f.db_instance else "DBClusterIdentifier", rds)
    else:
        rds_action = (
            "If the database runs on RDS, graph DatabaseConnections for the hour around the "
            "alert (set DB_INSTANCE from `aws rds describe-db-instances --query "
            "'DBInstances[].DBInstanceIdentifier'`)"
        )
        dimension = 'Name=DBInstanceIdentifier,Value="$DB_INSTANCE"'
    role_limit = role and engine and engine.name == "PostgreSQL"
    return steps_of(
        make_step(
            "Connect with an admin role and count sessions by role and state: many `idle` or "
            f"`idle in transaction` sessions{' for `' + role + '`' if role else ''} mean "
            "connections are held but not used.",
            engine.sessions,
        )
        if engine
        else make_step(
            "List the database's sessions by user and state (PostgreSQL: pg_stat_activity; "
            "MySQL: information_schema.processlist) to see who holds the connections."
        ),
        make_step(
            "Compare them with the limits that produced the error: "
            + (
                "the role's own connection limit and the server's max_connections."
                if role_limit
                else "the server's connection limits."
            ),
            engine.limits,
        )
        if engine
        else None,
        make_step(
            f"{rds_action}: a plateau at the limit confirms exhaustion, a sudden step points "
            "at a deploy or a scale-out.",
            metric_command(f, "AWS/RDS", "DatabaseConnections", dimension),
        ),
        make_step(
            f"Relieve the pressure now: end {of_role}sessions that have sat idle in a "
            "transaction for over five minutes; they hold connections and locks and do no work.",
            engine.idle_cleanup,
        )
        if engine
        else None,
        make_step(
            "Look for a connection leak: a connection checked out and not released on an error "
            "path"
            + (f", starting at `{location}` where this failure was raised" if location else "")
            + "; every checkout must be released in a finally block or a context manager."
        ),
        make_step(
            "Size the pools: pool size × instances (× concurrent Lambda invocations, if Lambda "
            f"connects) must stay below {'the role' if role_limit else 'the server'}'s limit, "
            "with headroom for admin sessions and migrations."
        ),
        make_step(
            f"Put {engine.proxy if engine else 'RDS Proxy or a pooler such as pgbouncer'} in "
            "front of the database so application pools share a bounded set of server "
            "connections.",
            "RDS console → Proxies → Create proxy",
        ),
    )


def playbook(f: Facts, ev: Evidence) -> Playbook:
    """Connection-pool exhaustion, phrased for the engine, role and code location the text
    names, with the SQL that shows who holds the connections."""
    role = find_name(DB_ROLE, f.evidence, 63)
    engine = _engine(f.evidence, role)
    db = engine.name if engine else "the database"
    as_role = f" as `{role}`" if role else ""
    location = _code_location(f.evidence)
    after = find_name(TIMEOUT_AFTER, f.evidence, 30)
    call = f"the connect call at `{location}`" if location else "each new connection attempt"
    gives_up = f"the caller gives up after {after}" if after else "callers see errors or timeouts"
    rds = f.db_instance or f.db_cluster
    root, impact, stakes = _text(f, ev, engine, role, call, gives_up)
    steps = _steps(f, engine, role, location)
    return Playbook(
        root_cause=root,
        hypothesis=f"Connection-pool exhaustion: {db} has no free connection to give{as_role}.",
        impact=impact,
        stakes=stakes,
        outage=True,
        steps=steps_of(*steps, alarm_history_step(f)),
        check_first=(
            f"{'`' + role + '` sessions' if role else 'Sessions'} by state: how many, and how many "
            "idle or idle in transaction?",
            f"DatabaseConnections on {'`' + rds + '`' if rds else 'the RDS instance, if it is one'}"
            ": flat at the limit, or a sudden step?",
            "Whether a deploy or scale-out (more tasks, pods or Lambda concurrency) came just "
            f"before {f.since}",
            f"Whether other services that share {'`' + role + '`' if role else 'the database'} "
            "are failing too",
        ),
    )
