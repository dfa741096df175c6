"""Which tokens of a masked log line are variables: the last step of `ingest.fingerprint.template`.

The masks before this step know the shapes of values (timestamps, UUIDs, addresses, sizes,
quoted data). This step knows what a log template is, as the field's benchmark defines it
(Loghub-2k, with the Loghub-2.0 paper's corrected templates): a token that holds any variable
part is a variable as a whole (`blk_-<*>`, `proxy.example.com:<*>`, `[worker_<*>]`), and so is
the value of a `key=value` pair when it is a number, a boolean, an empty pair of brackets, a
host name, or a user (`user=root`). Adjacent variables are one (`<*> <*> sent` and `<*> sent`
differ only in how a sender wrote a size). Every placeholder comes out as `<*>`, the notation
log parsers use.

Kept as they are, because they name the problem rather than an occurrence of it (the rule
tests/fixtures/fingerprint_corpus.json states and tests):

- a route whose ids are whole segments (`/api/orders/<*>`), and a pod's deployment
  (`orders-api-<pod>`);
- a code site: `OrderService.java:<*>`, `orders.go:<*>`, a method call `api.(*Handler).Get(`,
  a Go offset `+0x<*>`; the function that failed is the problem;
- an ARN, whose masks already left what names the resource (`arn:aws:s3:::invoices/<*>`);
- an HTTP status or an exit code the masks kept (`status: 502`), and words like `ec2`, `s3`,
  `http2` and AWS regions: 502 and 504, `us-east-1` and `eu-west-1` are different problems;
- a host name or a path written in the sentence rather than as a `key=value` (`certificate for
  api.example.com`, `Filesystem /var`): a named resource, which the on-call acts on as such.

Measured, not chosen by taste: `python bench/loghub_ga.py` scores each rule (docs/fingerprints.md
gives the figures), and the corpus test holds the kept ones. No rule names a system.
"""

from __future__ import annotations

import re
from typing import Final

VARIABLE: Final = "<*>"

_PLACEHOLDER = re.compile(r"<[a-z*]+>")
# `key=value` or `key:value`; not a URL (`https://`) and not a value that holds colons itself.
_KEY_VALUE = re.compile(r"([A-Za-z_][\w-]*(?:=|:(?!//)))([^:]+)")
_TRAILING = re.compile(r"[,;.:\"']+$")
_CODE_SITE = re.compile(
    r"(?:^|[(/\"])[\w$-]+\.(?:java|py|go|js|ts|rb|kt|scala|cs|cpp|c|h|rs|php):"
    r"|arn:|\+0x|[\w)]\.[A-Za-z_][\w$]*\("
)
# A route whose ids are whole segments (`/api/orders/<id>`) names an endpoint; a pod name
# (`orders-api-<pod>`) its deployment.
_ROUTE = re.compile(r"/[\w.-]+(?:/(?:[\w.-]+|<[a-z*]+>))*/?")
_POD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*-<pod>")
_HOST = re.compile(r"\(?[A-Za-z][\w-]*(?:\.[\w-]+)+\.[A-Za-z]{2,}\)?")
_STATUS = re.compile(r"[1-5][0-9][0-9]")
_AWS_REGION = re.compile(
    r"(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?-(?:north|south|east|west|central)"
    r"(?:east|west)?-[0-9]"
)
_DIGIT = re.compile(r"[0-9]")
_EMPTY = re.compile(r"[(\[{]\s*[)\]}]")
_PLAIN = re.compile(r"[^0-9<=:()\[\]{}]*")
_RUN = re.compile(r"<\*>(?: <\*>)+")
# The value of a user-naming key is a user: data, like the `for user <*>` the masks make.
_USER_KEYS: Final = frozenset("user= user: username= username: ruser= login= logname=".split())
_BOOLEANS: Final = frozenset("true false null none nil True False None NULL Null".split())


def generalise(line: str, kept_words: frozenset[str]) -> str:
    """`line` with each variable token replaced by `<*>` and runs of them made one.
    `kept_words` are the digit-bearing words the masks keep (`ec2`, `s3`, `http2`)."""
    tokens = (_token(token, kept_words) for token in line.split())
    return _RUN.sub(VARIABLE, " ".join(tokens))


def _token(token: str, kept_words: frozenset[str]) -> str:
    if _PLAIN.fullmatch(token):  # most tokens: no digit, placeholder, pair or bracket
        return VARIABLE if _TRAILING.sub("", token) in _BOOLEANS else token
    pair = _KEY_VALUE.fullmatch(token)
    if pair is not None and pair.group(1).lower() != "arn:":
        if pair.group(1).lower() in _USER_KEYS:
            return pair.group(1) + VARIABLE
        return pair.group(1) + _value(pair.group(2), kept_words, named=True)
    return _value(token, kept_words, named=False)


def _value(value: str, kept_words: frozenset[str], *, named: bool) -> str:
    """`named`: the value of a `key=value` pair, where a host name is a variable too."""
    core = _TRAILING.sub("", value)
    if not core or core == VARIABLE:
        return value
    if _CODE_SITE.search(core) or _AWS_REGION.search(core):
        return value
    if _ROUTE.fullmatch(core) or _POD.fullmatch(core):
        return value
    if _PLACEHOLDER.search(core):
        return VARIABLE
    if _DIGIT.search(core) and not _STATUS.fullmatch(core) and core.lower() not in kept_words:
        return VARIABLE
    if _EMPTY.fullmatch(core) or core in _BOOLEANS:
        return VARIABLE
    if named and _HOST.fullmatch(core):
        return VARIABLE
    return value
