"""AnalysisStore on both backends: each incident's newest analysis, and the cache per
problem and prompt version."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import T0
from tests.fakes.moto_server import aws, moto_server  # noqa: F401
from tests.unit.store_contract import (
    any_store,  # noqa: F401
    make_record,
)


def test_the_newest_analysis_of_an_incident_is_the_latest(any_store):
    any_store.put_analysis(make_record(body="first"))
    any_store.put_analysis(make_record(body="second", model=None, analyzer="offline"))

    latest = any_store.latest_analysis("INC-A")
    assert latest == make_record(body="second", model=None, analyzer="offline")
    assert any_store.latest_analysis("INC-B") is None


def test_the_analysis_cache_honours_prompt_version_and_age(any_store):
    any_store.put_cached_analysis(make_record(body="old"))
    any_store.put_cached_analysis(make_record(body="new", created_at=T0 + timedelta(hours=1)))

    assert any_store.cached_analysis("fp1", "v1", not_before=T0).body == "new"
    assert any_store.cached_analysis("fp1", "v2", not_before=T0) is None
    assert any_store.cached_analysis("fp1", "v1", not_before=T0 + timedelta(hours=2)) is None


def test_a_forgotten_cached_analysis_is_gone_and_forgetting_again_is_harmless(any_store):
    any_store.put_cached_analysis(make_record(body="cached"))
    any_store.put_cached_analysis(make_record(body="other version", prompt_version="v2"))

    any_store.forget_cached_analysis("fp1", "v1")
    any_store.forget_cached_analysis("fp1", "v1")
    any_store.forget_cached_analysis("fp-never-cached", "v1")

    assert any_store.cached_analysis("fp1", "v1", not_before=T0) is None
    assert any_store.cached_analysis("fp1", "v2", not_before=T0).body == "other version"
