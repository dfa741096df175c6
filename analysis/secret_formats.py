"""Token formats that providers document: a secret recognisable by its shape alone.

Each format is a kind (the marker's name) and a pattern. `analysis.redaction` turns each into a
rule, after its own rules for the formats it handles with context (AWS keys, Slack, JWTs,
private keys) and before the rules that find a secret by where it sits.

Why a table of its own: these are data, one line per provider, sourced from the providers'
documentation and checked against public test samples (tests/fixtures/secrets/). Adding a
provider is adding a line and a fixture.

How a pattern is written, for speed and precision:

- It starts with the provider's literal prefix wherever there is one, so the regex engine jumps
  to candidates instead of trying every position. A format without a fixed prefix names a
  `gate`: a substring one of which must occur in the text for the pattern to run at all.
- The boundary check sits after that literal as a fixed-width lookbehind (`_starts`): the token
  must not continue a word, except that a `\\n`, `\\r` or `\\t` escape in JSON-serialised text
  is no word. It must not be followed by a token character either (`_ENDS`), so a longer string
  that merely contains the shape is not cut in half.
- A body says the documented alphabet and length. Where a prefix is short or common (`dapi`,
  `key-`, `SK`), the body is exact (32 hex), so a word like `dapifoo` or a request id stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_WORD = "A-Za-z0-9_"
_ENDS = rf"(?![{_WORD}-])"


def _starts(prefix_length: int, word: str = _WORD) -> str:
    """A lookbehind, placed right after a prefix of `prefix_length` characters: the character
    before the prefix is no token character (a JSON escape's letter does not count)."""
    return rf"(?<![{word}](?<!\\[nrt]).{{{prefix_length}}})"


@dataclass(frozen=True, slots=True)
class SecretFormat:
    """One documented token format."""

    kind: str
    """The marker's name: `[REDACTED:<kind>]`."""
    pattern: re.Pattern[str]
    """Matches the whole secret, or its `value` group when the match holds context to keep."""
    gates: tuple[str, ...] = ()
    """For a pattern without a literal prefix: substrings one of which must occur."""
    hint: re.Pattern[str] | None = None
    """Likewise, a cheap search that must succeed where no substring is selective enough."""
    stem: str = ""
    """The letters or digits the pattern starts with, when it starts with a literal."""


def _prefixed(kind: str, prefix: str, body: str, *, word: str = _WORD) -> SecretFormat:
    """A token that starts with the literal `prefix` and goes on with `body`."""
    return SecretFormat(
        kind,
        re.compile(re.escape(prefix) + _starts(len(prefix), word) + body + _ENDS),
        stem=prefix,
    )


def _family(kind: str, stem: str, rests: dict[str, str]) -> SecretFormat:
    """Several tokens of one provider that share the literal `stem`: one rule, so the text is
    scanned once for the stem rather than once per token type. `rests` maps what follows the
    stem to the body after it."""
    alternatives = "|".join(re.escape(rest) + body for rest, body in rests.items())
    return SecretFormat(
        kind,
        re.compile(re.escape(stem) + _starts(len(stem)) + f"(?:{alternatives})" + _ENDS),
        stem=stem,
    )


def merged(formats: tuple[SecretFormat, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    """The formats that start with a literal, as one pattern, and the kind of each of its
    groups (`match.lastgroup` names the format that matched).

    Why: most alert strings are short (a label, a status), and a rule costs a call whatever the
    length, so sixty rules cost sixty calls per string. One pattern costs one. It is grouped by
    first character (`g(?:lpat-…|lsa_…)`), so the engine skips every position whose character
    starts no format and tries one group where one does: on long texts it is as fast as
    sixty literal scans. No two stems continue alike, so at most one alternative can match."""
    groups: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for index, form in enumerate(formats):
        source = form.pattern.pattern
        assert form.stem[:1].isalnum() and source.startswith(form.stem[0]), form
        name = f"format{index}"
        kinds[name] = form.kind
        groups.setdefault(form.stem[0], []).append(f"(?P<{name}>{source[1:]})")
    pattern = "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())
    return re.compile(pattern), kinds


_GITLAB_ROUTABLE = r"[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]{2,}){0,2}"
_GITLAB = r"[A-Za-z0-9_-]{20,}"

FORMATS: Final[tuple[SecretFormat, ...]] = (
    # --- source hosting and package registries
    _family(
        "gitlab_token",
        "gl",
        {
            **dict.fromkeys(
                ("pat-", "dt-", "rt-", "ptt-", "cbt-", "imt-", "oas-", "soat-"), _GITLAB_ROUTABLE
            ),
            **dict.fromkeys(("ft-", "agent-", "ffct-", "rtr-", "sst-", "wt-"), _GITLAB),
        },
    ),
    _prefixed("gitlab_token", "GR1348941", _GITLAB),
    _prefixed("npm_token", "npm_", r"[A-Za-z0-9]{36}"),
    _prefixed("pypi_token", "pypi-AgE", r"[A-Za-z0-9_-]{50,}"),
    _prefixed("rubygems_key", "rubygems_", r"[a-f0-9]{48}"),
    _family("docker_hub_token", "dckr_", dict.fromkeys(("pat_", "oat_"), r"[A-Za-z0-9_-]{20,}")),
    _prefixed("huggingface_token", "hf_", r"[A-Za-z0-9]{30,40}"),
    _prefixed("huggingface_token", "api_org_", r"[A-Za-z0-9]{30,40}"),
    _prefixed("artifactory_key", "AKCp", r"[A-Za-z0-9]{60,80}"),
    # --- observability and incident tooling
    _family(
        "grafana_token",
        "gl",
        {"sa_": r"[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}", "c_": r"[A-Za-z0-9+/]{32,400}={0,2}"},
    ),
    _prefixed("grafana_token", "eyJrIjoi", r"[A-Za-z0-9+/_-]{30,300}={0,2}"),
    _family(
        "sentry_token",
        "sntry",
        {"s_": r"eyJ[A-Za-z0-9+/=_-]{30,}", "u_": r"[a-f0-9]{64}"},
    ),
    _family(
        "new_relic_key",
        "NR",
        {
            "AK-": r"[A-Z0-9]{27}",
            "II-": r"[A-Za-z0-9_-]{32}",
            "JS-": r"[a-f0-9]{19}",
            "RA-": r"[a-f0-9]{42}",
        },
    ),
    _prefixed("postman_key", "PMAK-", r"[a-f0-9]{24}-[a-f0-9]{34}"),
    # --- cloud and platform providers
    _prefixed("google_oauth_token", "ya29.", r"[A-Za-z0-9_-]{20,}"),
    _prefixed("google_oauth_token", "1//0", r"[A-Za-z0-9_-]{30,}"),
    _family(
        "digitalocean_token", "do", dict.fromkeys(("p_v1_", "o_v1_", "r_v1_"), r"[a-f0-9]{64}")
    ),
    _prefixed("heroku_key", "HRKU-", r"[A-Za-z0-9_-]{20,}"),
    _prefixed("databricks_token", "dapi", r"[a-f0-9]{32}(?:-[0-9])?"),
    _prefixed("pulumi_token", "pul-", r"[a-f0-9]{40}"),
    _prefixed("vercel_token", "vcp_", r"[A-Za-z0-9]{24,}"),
    _prefixed("netlify_token", "nfp_", r"[A-Za-z0-9]{36}"),
    _family("supabase_key", "sb", {"p_": r"[a-f0-9]{40}", "_secret_": r"[A-Za-z0-9_-]{20,}"}),
    _family(
        "fly_token",
        "f",
        {
            "o1_": r"[A-Za-z0-9_-]{43}",
            "m1r_": r"[A-Za-z0-9+/]{100,}={0,2}",
            "m2_": r"[A-Za-z0-9+/]{100,}={0,2}",
        },
    ),
    _prefixed("render_key", "rnd_", r"[A-Za-z0-9]{28,32}"),
    _prefixed("alibaba_key", "LTAI", r"[A-Za-z0-9]{12,20}"),
    _family(
        "planetscale_token",
        "pscale_",
        dict.fromkeys(("tkn_", "pw_", "oauth_"), r"[A-Za-z0-9_=.-]{32,64}"),
    ),
    # Terraform Cloud: `<14>.atlasv1.<60–70>`; the match starts at the 14 characters.
    SecretFormat(
        "terraform_token",
        re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}" + _ENDS),
        gates=(".atlasv1.",),
    ),
    # --- secrets managers
    _prefixed(
        "doppler_token",
        "dp.",
        r"(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_-]{1,40}\.)?"
        r"[A-Za-z0-9]{40,44}",
    ),
    _family("vault_token", "hv", dict.fromkeys(("s.", "b.", "r."), r"[A-Za-z0-9_-]{24,}")),
    _prefixed("onepassword_token", "ops_", r"eyJ[A-Za-z0-9+/=_-]{50,}"),
    _prefixed("age_secret_key", "AGE-SECRET-KEY-1", r"[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    # --- communication and SaaS
    _prefixed("sendgrid_key", "SG.", r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    _prefixed("mailgun_key", "key-", r"[a-f0-9]{32}"),
    _prefixed("twilio_key", "SK", r"[a-f0-9]{32}"),
    _family(
        "shopify_token", "shp", dict.fromkeys(("at_", "ca_", "pa_", "ss_"), r"[a-fA-F0-9]{32}")
    ),
    _family("linear_key", "lin_", {"api_": r"[A-Za-z0-9]{40}", "oauth_": r"[A-Za-z0-9]{40,64}"}),
    _family("atlassian_token", "AT", dict.fromkeys(("ATT3", "CTT3"), r"[A-Za-z0-9_=-]{150,}")),
    _prefixed("figma_token", "figd_", r"[A-Za-z0-9_-]{40,}"),
    _prefixed("notion_token", "ntn_", r"[A-Za-z0-9]{40,}"),
    _family("square_token", "sq0", {"atp-": r"[A-Za-z0-9_-]{22,}", "csp-": r"[A-Za-z0-9_-]{40,}"}),
    _prefixed("square_token", "EAAA", r"[A-Za-z0-9_+=-]{56,}"),
    _prefixed("dropbox_token", "sl.", r"[A-Za-z0-9_-]{130,}"),
    _prefixed("airtable_token", "pat", r"[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    # Mailchimp `<32 hex>-us<N>` and Mailgun's newer private keys `<32 hex>-<8 hex>-<8 hex>`.
    SecretFormat(
        "mailchimp_key",
        re.compile(r"(?<![A-Za-z0-9_-])[a-f0-9]{32}-us[0-9]{1,2}" + _ENDS),
        gates=("-us",),
    ),
    SecretFormat(
        "mailgun_key",
        re.compile(r"(?<![A-Za-z0-9_-])[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}" + _ENDS),
        hint=re.compile(r"-[a-f0-9]{8}-[a-f0-9]{8}(?![A-Za-z0-9_-])"),
    ),
    # Azure AD client secrets: three characters, a digit, `Q~`, then 31–34 more.
    SecretFormat(
        "azure_client_secret",
        re.compile(
            r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}"
            r"(?![A-Za-z0-9_~.-])"
        ),
        gates=("Q~",),
    ),
    # Telegram bot tokens `<bot id>:AA<33>`, bare or in `api.telegram.org/bot<token>/`.
    SecretFormat(
        "telegram_token",
        re.compile(r"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}" + _ENDS),
        gates=(":AA",),
    ),
    # Discord bot tokens: the base64 of the bot's id, a timestamp, an HMAC.
    SecretFormat(
        "discord_token",
        re.compile(
            r"(?<![A-Za-z0-9_.-])(?=[A-Za-z_-]{0,25}[0-9])[MNO][A-Za-z0-9_-]{23,25}"
            r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}" + _ENDS
        ),
        hint=re.compile(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}"),
    ),
)
"""Every documented format, in the order the rules run (a longer prefix before a shorter one
that could match its start)."""

_COMMAND_END = r"[^\r\n|;&]*?[ \t]"
"""The rest of a command line up to a flag: a pipe, `;` or `&` ends the command."""
_PASSWORD_ARG = r"(?P<q>[\"']?)(?P<value>[^\s\"'\\]+)"
"""A command-line argument, quoted or not; a placeholder is kept by the rule that applies it."""


def _command(kind: str, pattern: str, *gates: str) -> SecretFormat:
    return SecretFormat(kind, re.compile(pattern), gates=gates)


CONTEXT_FORMATS: Final[tuple[SecretFormat, ...]] = (
    SecretFormat(
        "discord_webhook",
        re.compile(
            r"discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/[0-9]{17,20}/"
            r"(?P<value>[A-Za-z0-9_-]{60,70})"
        ),
    ),
    SecretFormat(
        "teams_webhook",
        re.compile(r"\.webhook\.office\.com/webhookb2/(?P<value>[A-Za-z0-9@/_-]{60,})"),
    ),
    # A Sentry DSN's key (`https://<32 hex>@o1.ingest.sentry.io/2`): it lets anyone send events.
    SecretFormat(
        "sentry_dsn",
        re.compile(r"://(?P<value>[0-9a-f]{32})(?::[0-9a-f]{32})?@(?=[A-Za-z0-9.-]*sentry)"),
    ),
    # A signed URL's signature grants what the URL grants until it expires: S3 and CloudFront
    # presigned URLs, Azure shared access signatures. A signature elsewhere (an SNS message's
    # `Signature`) proves who sent something and stays.
    SecretFormat(
        "url_signature",
        re.compile(r"[?&](?:sig|X-Amz-Signature|Signature)=(?P<value>[A-Za-z0-9%+/=_-]{16,})"),
        gates=("sig=", "Signature="),
    ),
    # A `.netrc` entry (`machine host login user password secret`), on one line or several:
    # curl, git and Heroku's CLI keep credentials there.
    SecretFormat(
        "password",
        re.compile(
            r"machine[ \t]+[^\s]+\s+(?:login[ \t]+[^\s]+\s+)?password[ \t]+" + _PASSWORD_ARG
        ),
        gates=("machine",),
    ),
    # --- passwords on command lines, where the command says which argument is one
    # `curl -u name:password`, `--user`, `--proxy-user`; not `docker run -u 1000:1000`. The
    # name may be an address, already redacted.
    _command(
        "cli_password",
        r"-(?<=(?<![^\s\"'])-)(?:u|U|-user|-proxy-user)(?:[ \t]+|=)[\"']?"
        r"(?:\[REDACTED:[a-z0-9_]+\]|[^\s:\"'/\\$\[\]]+):"
        r"(?![0-9]+(?![^\s\"']))(?P<value>[^\s\"'\\]+)",
    ),
    # `mysql -pS3cret` (attached: a space would make it prompt), also mysqldump, mariadb...
    _command(
        "cli_password",
        r"(?<![A-Za-z0-9_-])(?:mysql|mariadb)[a-z-]*(?=[ \t])"
        + _COMMAND_END
        + r"-p"
        + _PASSWORD_ARG,
        "mysql",
        "mariadb",
    ),
    _command("cli_password", r"sshpass(?=[ \t])" + _COMMAND_END + r"-p[ \t]*" + _PASSWORD_ARG),
    _command(
        "cli_password",
        r"(?<![A-Za-z0-9_-])(?:docker|podman|nerdctl|buildah|skopeo|oras|crane|helm[ \t]+registry)"
        r"[ \t]+login(?=[ \t])" + _COMMAND_END + r"(?:-p|--password)(?:[ \t]+|=)" + _PASSWORD_ARG,
        "login",
    ),
    _command("cli_password", r"redis-cli(?=[ \t])" + _COMMAND_END + r"-a[ \t]+" + _PASSWORD_ARG),
    _command(
        "cli_password",
        r"(?<![A-Za-z0-9_-])(?:sqlcmd|bcp)(?=[ \t])" + _COMMAND_END + r"-P[ \t]*" + _PASSWORD_ARG,
        "sqlcmd",
        "bcp",
    ),
    _command(
        "cli_password",
        r"(?<![A-Za-z0-9_-])mongo[a-z]*(?=[ \t])" + _COMMAND_END + r"-p[ \t]+" + _PASSWORD_ARG,
        "mongo",
    ),
    _command(
        "cli_password",
        r"ldap[a-z]+(?=[ \t])" + _COMMAND_END + r"-w[ \t]+" + _PASSWORD_ARG,
        "ldap",
    ),
    _command(
        "cli_password",
        r"(?:smb|rpc)client(?=[ \t])" + _COMMAND_END + r"(?:-U|--user(?:=|[ \t]+))[ \t]*"
        r"[^\s%\"']+%" + _PASSWORD_ARG,
        "client",
    ),
    # `openssl ... -passin pass:S3cret`, `keytool -storepass S3cret`.
    _command("cli_password", r"-pass(?:in|out)?[ \t]+pass:" + _PASSWORD_ARG),
    _command(
        "cli_password",
        r"-(?<=(?<![^\s\"'])-)(?:src|dest)?(?:store|key)pass[ \t]+" + _PASSWORD_ARG,
        "pass ",
    ),
    # `htpasswd -b file user password`, or `-nb user password` (no file).
    _command(
        "cli_password",
        r"htpasswd[ \t]+(?:(?=-[A-Za-z]*n)-[A-Za-z]*b[A-Za-z]*[ \t]+"
        r"|-[A-Za-z]*b[A-Za-z]*[ \t]+[^\s-][^\s]*[ \t]+)[^\s-][^\s]*[ \t]+" + _PASSWORD_ARG,
    ),
    _command(
        "cli_password",
        r"rabbitmqctl[ \t]+(?:add_user|change_password)[ \t]+[^\s]+[ \t]+" + _PASSWORD_ARG,
    ),
)
"""Secrets whose context is kept (a URL, a command line): only the `value` group goes."""

KINDS: Final[frozenset[str]] = frozenset(f.kind for f in FORMATS + CONTEXT_FORMATS)
