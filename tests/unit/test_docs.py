"""The README and docs/ point only at things that exist.

Code moves; prose that names it does not move with it. These tests read every Markdown page
we ship (README.md and docs/**/*.md) and fail when a relative link, a heading anchor, or a
file path named in code (`bot/app.py`, `python bench/sqs.py`) no longer resolves inside the
repository. Run after any move: the failure names the page and the path to update.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]

# A span counts as a path when it starts with one of the repository's top-level folders, or
# is one of its top-level files. A fixed list, so that a folder renamed away is still checked.
FOLDERS = (
    ".ci",
    "analysis",
    "bench",
    "blocks",
    "bot",
    "deploy",
    "docs",
    "incidents",
    "ingest",
    "notify",
    "scripts",
    "tests",
)
FILES = ("Dockerfile", "Procfile", "README.md", "pyproject.toml", "slack-app-manifest.yaml")

_FENCE = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n.*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HTML_TARGET = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_ROOTS = "|".join(re.escape(name) for name in FOLDERS)
# Commands name files to run, and diagrams name modules: in those blocks, a token that
# begins with a top-level folder is a path. Other blocks hold output and YAML, where `bot/AM`
# is a column header.
_NAMING = ("bash", "sh", "shell", "console", "mermaid")
_PATH_TOKEN = re.compile(rf"(?<![\w./-])((?:{_ROOTS})/[\w./<>*{{}}-]*)")
_PLACEHOLDER = re.compile(r"[<>*{}]")


def _prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return _FENCE.sub("", text)


def _fences(text: str, languages: tuple[str, ...] = ()) -> list[str]:
    """The fenced blocks, or only those whose info string names one of `languages`."""
    blocks = [match.group(0) for match in _FENCE.finditer(text)]
    if not languages:
        return blocks
    return [block for block in blocks if block.lstrip(" `~").split("\n")[0].strip() in languages]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to
    hyphens."""
    text = _INLINE_CODE.sub(lambda match: match.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in _HEADING.finditer(_prose(page.read_text(encoding="utf-8"))):
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    """Every link target outside code: inline links, images, references, HTML."""
    prose = _prose(page.read_text(encoding="utf-8"))
    text = _INLINE_CODE.sub(lambda match: "`" + " " * len(match.group(2)) + "`", prose)
    found = [match.group(1) for match in _LINK.finditer(text)]
    found += [match.group(1) for match in _REFERENCE.finditer(text)]
    found += [match.group(1) for match in _HTML_TARGET.finditer(text)]
    return found


def _is_path(span: str) -> bool:
    if span in FILES or span.startswith("../"):  # `../` climbs: it must stay inside
        return True
    return bool(re.fullmatch(rf"(?:{_ROOTS})/[\w./<>*{{}}-]*", span))


def named_paths(page: Path) -> list[str]:
    return paths_in(page.read_text(encoding="utf-8"))


def paths_in(text: str) -> list[str]:
    """Paths named in inline code spans, and path tokens in shell and diagram blocks."""
    found = []
    for match in _INLINE_CODE.finditer(_prose(text)):
        span = match.group(2).strip()
        span = re.sub(r"(::\w+|:\d+(?:-\d+)?)$", "", span)  # test ids, line numbers
        if _is_path(span):
            found.append(span)
    for block in _fences(text, _NAMING):
        found += [token.rstrip(".") for token in _PATH_TOKEN.findall(block)]
    return found


def resolves(path: str, page: Path = ROOT / "README.md") -> bool:
    """The path exists inside the repository; a path with a placeholder (`<class>`, `*`)
    needs its fixed prefix. `../` is read from the page's folder, anything else from the
    root."""
    if _PLACEHOLDER.search(path):
        path = _PLACEHOLDER.split(path, maxsplit=1)[0].rpartition("/")[0]
    target = (page.parent if path.startswith("../") else ROOT) / path
    return _inside(target) and target.exists()


def _inside(target: Path) -> bool:
    return target.resolve().is_relative_to(ROOT)


def _ids(pages: list[Path]) -> list[str]:
    return [str(page.relative_to(ROOT)) for page in pages]


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        destination = (page.parent / path) if path else page
        if not _inside(destination) or not destination.exists():
            broken.append(f"{target}: no such file in the repository")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {path or page.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_named_path_exists(page: Path) -> None:
    missing = sorted({path for path in named_paths(page) if not resolves(path, page)})
    assert not missing, f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    """The README's table of links is the way in; a page missing from it is never found."""
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(ROOT / "README.md")}
    orphans = [str(page.relative_to(ROOT)) for page in DOCS if page.resolve() not in linked]
    assert not orphans, f"docs pages missing from README.md's links: {orphans}"


def test_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move detail into docs/"


def test_readme_test_command_is_the_one_ci_runs() -> None:
    """The quick start promises the command CI runs; both must name scripts/test."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = "\n".join(_fences((ROOT / "README.md").read_text(encoding="utf-8")))
    assert re.search(r"^\s*scripts/test\b", ci, re.MULTILINE)
    assert re.search(r"(?:&&|^)\s*scripts/test\s*$", readme, re.MULTILINE)


def test_the_checks_see_what_they_should() -> None:
    """The readers themselves: a link, a code path, a path in a command, an anchor."""
    sample = ROOT / "docs" / "architecture.md"
    assert "bot/app.py" in named_paths(sample)
    diagram = '```mermaid\nflowchart LR\n  a["Receiver<br/>ingest/webhook.py"] --> b\n```\n'
    assert paths_in(diagram) == ["ingest/webhook.py"]
    command = "```bash\npython bench/sqs.py --alerts 10\n```\n```\nbot/AM  1.0x\n```\n"
    assert paths_in(command) == ["bench/sqs.py"]
    assert paths_in("see `analysis/redaction.py:12` and `tests/unit/test_x.py::test_y`") == [
        "analysis/redaction.py",
        "tests/unit/test_x.py",
    ]
    assert any(target.endswith(".md") for target in links(sample))
    assert _slug("Where `run` lives: bot/app.py") == "where-run-lives-botapppy"
    assert not _is_path("1/s") and not _is_path("application/json")
    assert resolves("tests/fixtures/payloads/<sender>/*.json")


# Read by the SDKs rather than by `Settings`, and documented for that reason.
SDK_VARIABLES = {
    "ANTHROPIC_BASE_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
}


def _documented_settings() -> set[str]:
    """The variables named in the first column of docs/configuration.md's tables."""
    names: set[str] = set()
    for line in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_configuration_page_names_every_setting_and_no_other() -> None:
    """docs/configuration.md is the list of what bot/settings.py reads: a setting added
    without a row, or a row left after its setting went, fails here."""
    read = {name.upper() for name in Settings.model_fields}
    documented = _documented_settings()
    assert not read - documented, (
        f"settings missing from docs/configuration.md: {read - documented}"
    )
    unknown = documented - read - SDK_VARIABLES
    assert not unknown, f"docs/configuration.md documents what no code reads: {unknown}"
