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

    any_store.forget_cached_analysis("fp1", "v1", at=T0 + timedelta(minutes=1))
    any_store.forget_cached_analysis("fp1", "v1", at=T0 + timedelta(minutes=1))
    any_store.forget_cached_analysis("fp-never-cached", "v1", at=T0 + timedelta(minutes=1))

    assert any_store.cached_analysis("fp1", "v1", not_before=T0) is None
    assert any_store.cached_analysis("fp1", "v2", not_before=T0).body == "other version"


def test_an_analysis_begun_before_the_forgetting_does_not_refill_the_cache(any_store):
    """Whichever incident of the problem it was about: the confirmation came after it began."""
    any_store.put_cached_analysis(make_record(body="cached"))
    forgot = T0 + timedelta(minutes=10)
    any_store.forget_cached_analysis("fp1", "v1", at=forgot)

    late = make_record(
        body="begun before", incident_id="INC-B", created_at=forgot + timedelta(minutes=1)
    )
    any_store.put_cached_analysis(late, begun=forgot - timedelta(minutes=5))
    any_store.put_cached_analysis(make_record(body="begun as it was forgotten"), begun=forgot)
    any_store.put_cached_analysis(make_record(body="made before"))

    assert any_store.cached_analysis("fp1", "v1", not_before=T0) is None


def test_an_analysis_begun_after_the_forgetting_is_cached(any_store):
    forgot = T0 + timedelta(minutes=10)
    any_store.forget_cached_analysis("fp1", "v1", at=forgot)
    after = forgot + timedelta(seconds=1)

    any_store.put_cached_analysis(
        make_record(body="begun after", created_at=after + timedelta(minutes=1)), begun=after
    )

    assert any_store.cached_analysis("fp1", "v1", not_before=T0).body == "begun after"


def test_a_forgetting_is_not_undone_by_an_earlier_one_arriving_late(any_store):
    any_store.forget_cached_analysis("fp1", "v1", at=T0 + timedelta(minutes=10))
    any_store.forget_cached_analysis("fp1", "v1", at=T0 + timedelta(minutes=5))

    any_store.put_cached_analysis(make_record(), begun=T0 + timedelta(minutes=7))

    assert any_store.cached_analysis("fp1", "v1", not_before=T0) is None


def test_an_analysis_begun_before_a_newer_cached_one_does_not_replace_it(any_store):
    any_store.put_cached_analysis(make_record(body="newer", created_at=T0 + timedelta(hours=1)))

    any_store.put_cached_analysis(
        make_record(body="slow", created_at=T0 + timedelta(hours=2)),
        begun=T0 + timedelta(minutes=30),
    )

    assert any_store.cached_analysis("fp1", "v1", not_before=T0).body == "newer"
