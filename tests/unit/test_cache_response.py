"""Which responses the cache stores, for how long, and how long they may be served stale."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shieldwall.cache import CacheConfig, Freshness, field_pairs, freshness, is_origin_error
from shieldwall.cache.directives import MAX_DELTA_SECONDS, http_date, parse_directives

CFG = CacheConfig(stale_if_error=300.0, stale_while_revalidate=0.0)
Fields = Sequence[tuple[bytes, bytes]]
DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"


def fresh(fields: Fields, status: int = 200, config: CacheConfig = CFG) -> Freshness | None:
    return freshness(status, fields, config)


def lifetime(*fields: tuple[bytes, bytes], status: int = 200, config: CacheConfig = CFG) -> float | None:
    result = fresh(list(fields), status, config)
    return None if result is None else result.lifetime


# ---- what is stored at all


@pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 308, 404, 410])
def test_heuristically_cacheable_statuses_with_explicit_freshness_are_stored(status: int) -> None:
    assert lifetime((b"Cache-Control", b"max-age=60"), status=status) == 60


@pytest.mark.parametrize("status", [201, 206, 302, 303, 304, 307, 400, 403, 429, 500, 502, 503])
def test_other_statuses_are_never_stored(status: int) -> None:
    assert lifetime((b"Cache-Control", b"max-age=60"), status=status) is None


@pytest.mark.parametrize(
    "cache_control",
    [
        b"private",
        b"private, max-age=60",
        b'private="X-User", max-age=60',
        b"no-store, max-age=60",
        b"no-cache, max-age=60",
        b'no-cache="Set-Cookie", max-age=60',
        b"max-age=60, NO-STORE",
        b"public, max-age=60, no-cache",
    ],
)
def test_private_no_store_and_no_cache_are_not_stored(cache_control: bytes) -> None:
    assert lifetime((b"Cache-Control", cache_control)) is None


def test_no_store_in_a_second_cache_control_field_counts_too() -> None:
    assert lifetime((b"Cache-Control", b"max-age=60"), (b"cache-control", b"no-store")) is None


def test_a_response_that_sets_a_cookie_is_never_stored() -> None:
    assert lifetime((b"Cache-Control", b"public, max-age=600"), (b"Set-Cookie", b"a=b")) is None
    assert lifetime((b"set-cookie", b"a=b"), (b"Cache-Control", b"s-maxage=600")) is None


def test_vary_star_is_not_stored_and_vary_names_are_normalised() -> None:
    assert lifetime((b"Cache-Control", b"max-age=60"), (b"Vary", b"Accept-Encoding, *")) is None
    result = fresh(
        [
            (b"Cache-Control", b"max-age=60"),
            (b"Vary", b"Accept-Language, accept-encoding"),
            (b"vary", b"Accept-Encoding"),
        ]
    )
    assert result is not None and result.vary == (b"accept-encoding", b"accept-language")


def test_without_explicit_freshness_nothing_is_stored_unless_the_operator_sets_a_default_ttl() -> None:
    assert lifetime((b"Content-Type", b"text/html")) is None
    assert lifetime((b"Cache-Control", b"public")) is None
    with_default = CacheConfig(default_ttl=5.0)
    assert lifetime((b"Content-Type", b"text/html"), config=with_default) == 5.0
    assert lifetime((b"Cache-Control", b"max-age=60"), config=with_default) == 60  # explicit wins
    assert lifetime((b"Cache-Control", b"private"), config=with_default) is None
    assert lifetime((b"Cache-Control", b"max-age=60"), status=302, config=with_default) is None


# ---- freshness lifetime: s-maxage over max-age over Expires - Date


def test_s_maxage_wins_over_max_age_and_max_age_over_expires() -> None:
    expires = (b"Expires", b"Sun, 06 Nov 1994 09:49:37 GMT")
    assert lifetime((b"Cache-Control", b"max-age=10, s-maxage=20"), (b"Date", DATE), expires) == 20
    assert lifetime((b"Cache-Control", b"max-age=10"), (b"Date", DATE), expires) == 10
    assert lifetime((b"Date", DATE), expires) == 3600


def test_expires_in_the_past_or_invalid_means_already_stale() -> None:
    # Fresh for 0 s: stored only because the operator's stale-if-error window applies.
    assert lifetime((b"Date", DATE), (b"Expires", b"Sun, 06 Nov 1994 08:00:00 GMT")) == 0
    assert lifetime((b"Date", DATE), (b"Expires", b"0")) == 0
    no_stale = CacheConfig(stale_if_error=0.0)
    assert lifetime((b"Date", DATE), (b"Expires", b"0"), config=no_stale) is None


def test_expires_without_date_is_not_explicit_freshness() -> None:
    assert lifetime((b"Expires", b"Sun, 06 Nov 1994 09:49:37 GMT")) is None


@pytest.mark.parametrize(
    "cache_control", [b"max-age=abc", b"max-age=", b"max-age=-1", b"max-age=10, max-age=20", b"s-maxage=1.5"]
)
def test_malformed_or_contradictory_freshness_is_not_guessed(cache_control: bytes) -> None:
    assert lifetime((b"Cache-Control", cache_control)) is None


def test_the_same_directive_twice_with_the_same_value_is_fine() -> None:
    assert lifetime((b"Cache-Control", b"max-age=10"), (b"Cache-Control", b"max-age=10")) == 10


def test_quoted_arguments_and_spacing_are_read() -> None:
    assert lifetime((b"Cache-Control", b'public , max-age = "30" ,,')) == 30


def test_a_cache_control_that_is_not_a_directive_list_is_not_stored() -> None:
    assert lifetime((b"Cache-Control", b"max-age=60; private")) is None
    assert lifetime((b"Cache-Control", b'max-age=60, x="unterminated')) is None


def test_huge_delta_seconds_are_capped() -> None:
    assert lifetime((b"Cache-Control", b"max-age=99999999999999999999")) == MAX_DELTA_SECONDS


def test_age_field_is_the_initial_age() -> None:
    result = fresh([(b"Cache-Control", b"max-age=60"), (b"Age", b"15")])
    assert result is not None and result.initial_age == 15
    result = fresh([(b"Cache-Control", b"max-age=60"), (b"Age", b"soon")])
    assert result is not None and result.initial_age == 0


# ---- stale windows


def stale(cache_control: bytes, config: CacheConfig = CFG) -> tuple[float, float]:
    result = fresh([(b"Cache-Control", cache_control)], config=config)
    assert result is not None
    return result.stale_while_revalidate, result.stale_if_error


def test_operator_defaults_apply_when_the_origin_says_nothing() -> None:
    assert stale(b"max-age=60") == (0, 300)
    assert stale(b"max-age=60", CacheConfig(stale_while_revalidate=7, stale_if_error=11)) == (7, 11)


def test_origin_stale_directives_extend_the_operator_defaults() -> None:
    assert stale(b"max-age=60, stale-while-revalidate=30, stale-if-error=900") == (30, 900)
    assert stale(b"max-age=60, stale-if-error=10") == (0, 300)  # the longer of the two
    assert stale(b"max-age=60, stale-if-error") == (0, 300)  # no argument: ignored


def test_must_revalidate_and_proxy_revalidate_forbid_stale_serving() -> None:
    assert stale(b"max-age=60, must-revalidate") == (0, 0)
    assert stale(b"max-age=60, proxy-revalidate, stale-if-error=100") == (0, 0)


def test_s_maxage_keeps_only_the_origins_own_stale_directives() -> None:
    assert stale(b"s-maxage=60") == (0, 0)
    assert stale(b"s-maxage=60, stale-while-revalidate=5, stale-if-error=50") == (5, 50)


def test_max_age_zero_is_stored_for_its_stale_windows_only() -> None:
    result = fresh(
        [(b"Cache-Control", b"max-age=0, stale-while-revalidate=30")], config=CacheConfig(stale_if_error=0)
    )
    assert result is not None and (result.lifetime, result.stale_while_revalidate) == (0, 30)
    assert lifetime((b"Cache-Control", b"max-age=0"), config=CacheConfig(stale_if_error=0)) is None


# ---- helpers


def test_origin_error_statuses() -> None:
    assert [s for s in (200, 404, 500, 501, 502, 503, 504, 505) if is_origin_error(s)] == [500, 502, 503, 504]


def test_http_dates_in_all_three_forms() -> None:
    imf = http_date(DATE)
    assert imf == 784111777.0
    assert http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == imf
    assert http_date(b"Sun Nov  6 08:49:37 1994") == imf
    assert http_date(b"yesterday") is None


def test_directives_are_case_insensitive_and_keep_the_first_value() -> None:
    directives = parse_directives([b'Max-Age=5, X-Ext="a, b", no-transform'])
    assert directives is not None
    assert directives.seconds(b"max-age") == 5 and b"x-ext" in directives and b"no-transform" in directives


def test_field_pairs_split_data_plane_lines() -> None:
    assert field_pairs([b"Content-Type: text/html\r\n", b"X-A:b \r\n"]) == [
        (b"Content-Type", b"text/html"),
        (b"X-A", b"b"),
    ]
