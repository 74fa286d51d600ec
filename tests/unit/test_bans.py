"""BanTable: automatic bans and their escalation, chains kept across a restart, manual and prefix bans
from the store, the allowlist, lifts, and bounded memory. Times are plain wall-clock floats moved by
hand: nothing sleeps."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.config.policy_schema import Bans
from shieldwall.limiter.bans import Ban, BanTable, Chain, Lift, apply_lifts, ban_target, latest, strongest
from shieldwall.net.client_identity import client_prefix

T0 = 1_700_000_000.0
IP = "203.0.113.7"
PREFIX = "203.0.113.0/24"
LADDER = [60.0, 600.0, 3600.0, 86400.0]


def table(**settings: object) -> BanTable:
    return BanTable(Bans.model_validate(settings))


def offend(bans: BanTable, times: int, now: float, *, ip: str = IP, gap: float = 0.0) -> Ban | None:
    """`times` refusals of `ip`, `gap` seconds apart from `now`; the ban the last one earned, if any."""
    earned = None
    for index in range(times):
        earned = bans.offence(ip, client_prefix(ip), now + index * gap)
        if earned is not None:
            assert index == times - 1, f"banned after {index + 1} refusals, not {times}"
    return earned


def manual(target: str, until: float | None, since: float = T0, reason: str = "by hand") -> Ban:
    """A ban as `shieldwall bans add` writes it to the store, for merge()."""
    return Ban(target, until, reason, "manual", 0, since)


# --- earning a ban -------------------------------------------------------------------------------


def test_offences_within_the_window_ban_for_the_first_duration() -> None:
    bans = table()
    ban = offend(bans, 30, T0, gap=2.0)  # the 30th refusal 58 s after the first
    assert ban == Ban(IP, T0 + 58 + 60, "30 refusals within 60 s", "auto", 0, T0 + 58)
    assert bans.check(IP, PREFIX, T0 + 59) == ban


def test_offences_under_the_threshold_never_ban() -> None:
    bans = table()
    assert offend(bans, 29, T0) is None
    assert bans.check(IP, PREFIX, T0) is None


def test_offences_spread_beyond_the_window_never_ban() -> None:
    bans = table()
    # 300 refusals, 2.1 s apart: never 30 within any 60 s
    assert offend(bans, 300, T0, gap=2.1) is None
    assert bans.own(T0 + 629) == [] and bans.chains(T0 + 629) == []


def test_a_window_that_closed_starts_counting_again() -> None:
    bans = table(offences=3, offence_window=10.0)
    assert offend(bans, 2, T0) is None
    assert offend(bans, 2, T0 + 11) is None  # the old window closed: these are 1 and 2 of a new one
    assert offend(bans, 1, T0 + 12) is not None


def test_refusals_while_banned_neither_count_nor_escalate() -> None:
    """A client's open connections outlive its ban at accept time: their refusals must not stack bans."""
    bans = table(offences=2)
    first = offend(bans, 2, T0)
    assert first is not None and first.level == 0
    assert offend(bans, 10, T0 + 1) is None
    assert bans.own(T0 + 1) == [first]
    assert bans.chains(T0 + 1) == [Chain(IP, 1, first.end + 86400)]


def test_disabled_means_no_automatic_bans_but_manual_ones_hold() -> None:
    bans = table(enabled=False, offences=1)
    assert offend(bans, 5, T0) is None
    bans.merge([manual(IP, T0 + 60)])
    assert bans.check(IP, PREFIX, T0 + 1) is not None


# --- escalation ----------------------------------------------------------------------------------


def test_escalation_ladder_and_its_cap() -> None:
    """1 min, 10 min, 1 h, 24 h, then 24 h again: each new ban soon after the previous one ends."""
    bans = table()
    now, lengths, levels = T0, [], []
    for _ in range(6):
        ban = offend(bans, 30, now)
        assert ban is not None and ban.until is not None
        lengths.append(ban.until - ban.since)
        levels.append(ban.level)
        assert bans.check(IP, PREFIX, ban.until - 1) == ban
        assert bans.check(IP, PREFIX, ban.until) is None  # expired exactly at `until`
        now = ban.until + 300  # back five minutes after the ban ended
    assert lengths == [*LADDER, 86400.0, 86400.0]
    assert levels == [0, 1, 2, 3, 4, 5]


def test_memory_expiry_resets_the_level() -> None:
    bans = table()
    first = offend(bans, 30, T0)
    assert first is not None and first.until is not None
    second = offend(bans, 30, first.until + 86400 - 1)  # one second before the first is forgotten
    assert second is not None and second.level == 1 and second.until is not None
    third = offend(bans, 30, second.until + 86400)  # exactly `memory` after the second ended
    assert third is not None and third.level == 0
    assert third.until == third.since + 60


def test_a_custom_ladder_and_memory() -> None:
    bans = table(offences=1, durations=[5.0, 50.0], memory=100.0)
    first = offend(bans, 1, T0)
    assert first is not None and first.until == T0 + 5
    second = offend(bans, 1, T0 + 10)
    assert second is not None and second.until == T0 + 60
    third = offend(bans, 1, T0 + 70)
    assert third is not None and third.until == T0 + 120  # the last duration repeats
    fourth = offend(bans, 1, T0 + 120 + 100)
    assert fourth is not None and fourth.level == 0


# --- what a ban covers ---------------------------------------------------------------------------


def test_a_prefix_ban_covers_the_whole_24_and_nothing_else() -> None:
    bans = table()
    ban = manual("203.0.113.0/24", T0 + 600, reason="scraper farm")
    bans.merge([ban])
    for last in (0, 7, 254, 255):
        ip = f"203.0.113.{last}"
        assert bans.check(ip, client_prefix(ip), T0 + 1) == ban
    assert bans.check("203.0.114.1", "203.0.114.0/24", T0 + 1) is None
    assert bans.check("203.0.112.255", "203.0.112.0/24", T0 + 1) is None


def test_an_ipv6_prefix_ban_covers_the_64() -> None:
    bans = table()
    bans.merge([manual("2001:db8:1:2::/64", T0 + 600)])
    for ip in ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"):
        assert bans.check(ip, client_prefix(ip), T0) is not None
    assert bans.check("2001:db8:1:3::1", client_prefix("2001:db8:1:3::1"), T0) is None


def test_a_permanent_manual_ban_never_expires_but_can_be_removed() -> None:
    """The operator removes a manual ban from the store (`shieldwall bans remove`): the next merge,
    which no longer has it, lets the client in."""
    bans = table()
    bans.merge([manual(IP, None)])
    assert bans.check(IP, PREFIX, T0 + 10 * 365 * 86400) is not None
    assert bans.own(T0) == []  # the store's, not this worker's to save
    bans.merge([])
    assert bans.check(IP, PREFIX, T0) is None and len(bans) == 0


def test_expired_bans_are_absent_and_dropped() -> None:
    bans = table(offences=1, durations=[10.0])
    bans.merge([manual("198.51.100.1", T0 + 10)])
    assert offend(bans, 1, T0) is not None
    assert len(bans) == 3  # the stored ban, the own ban, its offender record
    assert bans.check("198.51.100.1", "198.51.100.0/24", T0 + 10) is None
    assert bans.check(IP, PREFIX, T0 + 10) is None
    assert len(bans) == 1  # only the offender record, for its chain
    assert bans.own(T0 + 10) == []


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.9/24", "203.0.113.0/24"),
        ("203.0.113.7/32", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:DB8:1:2::5/64", "2001:db8:1:2::/64"),
        ("2001:db8::1", "2001:db8::1"),
    ],
)
def test_ban_targets_are_spelled_as_client_prefix_spells_them(text: str, canonical: str) -> None:
    assert ban_target(text) == canonical


@pytest.mark.parametrize(
    "text", ["10.0.0.0/16", "203.0.113.0/28", "2001:db8::/48", "fe80::1%eth0", "host", ""]
)
def test_other_targets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ban_target(text)


# --- the allowlist wins --------------------------------------------------------------------------


def test_allowlist_beats_manual_prefix_and_automatic_bans() -> None:
    bans = table(allowlist=["203.0.113.7", "2001:db8::/32"], offences=1)
    bans.merge([manual(IP, None), manual(PREFIX, None)])
    assert bans.check(IP, PREFIX, T0) is None
    assert bans.check("203.0.113.8", PREFIX, T0) is not None  # its neighbour is not allowlisted
    assert offend(bans, 50, T0, ip="2001:db8::1") is None
    assert bans.check("2001:db8::1", client_prefix("2001:db8::1"), T0) is None
    assert len(bans) == 2  # allowlisted offenders are not even tracked


def test_allowlist_beats_bans_from_the_store() -> None:
    bans = table(allowlist=["10.0.0.0/8"])
    bans.merge([Ban("10.1.2.3", T0 + 60, "other worker", "auto", 0, T0)])
    assert bans.check("10.1.2.3", "10.1.2.0/24", T0) is None


# --- the store's bans and lifts ------------------------------------------------------------------


def test_merged_bans_apply_and_the_next_merge_replaces_them() -> None:
    bans = table()
    other = Ban("198.51.100.1", T0 + 60, "other worker", "auto", 0, T0)
    bans.merge([other])
    assert bans.check("198.51.100.1", "198.51.100.0/24", T0) == other
    assert bans.own(T0) == []  # not this worker's to save
    bans.merge([])
    assert bans.check("198.51.100.1", "198.51.100.0/24", T0) is None


def test_a_stored_copy_of_an_own_ban_takes_no_room() -> None:
    bans = table(offences=1)
    ban = offend(bans, 1, T0)
    assert ban is not None
    bans.merge([ban, Ban("198.51.100.1", T0 + 60, "other worker", "auto", 0, T0)])
    assert len(bans) == 3  # own ban, its offender record, the other worker's ban


def test_a_lift_drops_own_bans_it_covers_and_forgets_the_offender() -> None:
    bans = table(offences=1)
    ban = offend(bans, 1, T0)
    assert ban is not None and bans.own(T0) == [ban]
    changes = bans.changes
    lift = Lift(IP, T0 + 5, ban.until)
    bans.merge([ban], [lift])  # the store still holds the ban (its worker's file); the lift covers it
    assert bans.check(IP, PREFIX, T0 + 6) is None
    assert bans.own(T0 + 6) == [] and bans.changes > changes
    again = offend(bans, 1, T0 + 7)  # began after the lift: counts, from the first rung
    assert again is not None and again.level == 0
    bans.merge([ban, again], [lift])
    assert bans.check(IP, PREFIX, T0 + 8) == again


def test_apply_lifts_and_strongest() -> None:
    old = Ban(IP, T0 + 100, "a", "auto", 0, T0)
    new = Ban(IP, T0 + 50, "b", "manual", 0, T0 + 20)
    other = Ban("198.51.100.1", T0 + 100, "c", "auto", 0, T0)
    assert apply_lifts([old, new, other], [Lift(IP, T0 + 10, T0 + 100)]) == [new, other]
    assert strongest([new, old, other]) == {IP: old, "198.51.100.1": other}


def test_adopt_takes_back_own_bans_and_the_chain_level() -> None:
    """After a restart, a worker's file gives back its bans and the level its offenders reached."""
    before = table(offences=1)
    offend(before, 1, T0)
    ban = offend(before, 1, T0 + 70)
    assert ban is not None and ban.level == 1 and ban.until is not None
    after = table(offences=1)
    after.adopt(before.own(T0 + 80))
    assert after.own(T0 + 80) == [ban]
    assert after.check(IP, PREFIX, T0 + 80) == ban
    next_one = offend(after, 1, ban.until + 10)
    assert next_one is not None and next_one.level == 2


def test_merge_keeps_the_ban_that_ends_last_on_each_target() -> None:
    bans = table()
    longer = manual("198.51.100.1", T0 + 100)
    bans.merge([longer, Ban("198.51.100.1", T0 + 50, "shorter", "auto", 0, T0 + 1)])
    assert bans.check("198.51.100.1", "198.51.100.0/24", T0 + 60) == longer
    assert len(bans) == 1


# --- chains across a restart ---------------------------------------------------------------------


def test_a_chain_outlives_its_ban_and_then_runs_out() -> None:
    bans = table(offences=1)
    ban = offend(bans, 1, T0)
    assert ban is not None and ban.until == T0 + 60
    assert bans.chains(ban.until + 10) == [Chain(IP, 1, T0 + 60 + 86400)]
    assert bans.chains(T0 + 60 + 86400) == []  # forgotten exactly `memory` after the ban's end


def test_an_adopted_chain_bans_no_one_and_lengthens_the_next_ban() -> None:
    """A restarted worker whose file holds only a chain (the ban itself ended before the restart)."""
    bans = table(offences=2)
    bans.adopt([], [Chain(IP, 1, T0 + 1000)])
    assert bans.check(IP, PREFIX, T0) is None and bans.own(T0) == []
    assert bans.offence(IP, PREFIX, T0) is None, "a chain is no refusal: the count starts at zero"
    ban = bans.offence(IP, PREFIX, T0)
    assert ban is not None and ban.level == 1 and ban.until == T0 + 600
    assert bans.chains(T0) == [Chain(IP, 2, T0 + 600 + 86400)]


def test_an_adopted_chain_that_ran_out_starts_the_ladder_again() -> None:
    bans = table(offences=1)
    bans.adopt([], [Chain(IP, 3, T0)])
    ban = offend(bans, 1, T0)
    assert ban is not None and ban.level == 0 and ban.until == T0 + 60


def test_adopted_bans_and_chains_keep_the_longest_chain() -> None:
    bans = table(offences=1)
    ban = Ban(IP, T0 + 600, "30 refusals within 60 s", "auto", 1, T0)  # implies Chain(IP, 2, ...)
    bans.adopt([ban], [Chain(IP, 3, T0 + 10), Chain("192.0.2.1", 1, T0 + 10)])
    assert sorted(bans.chains(T0), key=lambda chain: chain.target) == [
        Chain("192.0.2.1", 1, T0 + 10),
        Chain(IP, 3, T0 + 600 + 86400),
    ]


def test_a_lift_forgets_the_chain() -> None:
    bans = table(offences=1)
    ban = offend(bans, 1, T0)
    assert ban is not None
    bans.merge([], [Lift(IP, T0 + 1, ban.until)])
    assert bans.chains(T0 + 1) == []


def test_adopting_more_chains_than_max_entries_keeps_those_remembered_longest() -> None:
    bans = table(max_entries=10)
    bans.adopt([], [Chain(f"198.51.100.{i}", 1, T0 + i) for i in range(30)])
    assert len(bans) == 10
    assert {chain.target for chain in bans.chains(T0)} == {f"198.51.100.{i}" for i in range(20, 30)}


def test_latest_keeps_the_chain_remembered_longest() -> None:
    old, new = Chain(IP, 4, T0 + 10), Chain(IP, 1, T0 + 20)  # the chain started again since
    other = Chain("192.0.2.1", 1, T0)
    assert latest([new, old, other]) == {IP: new, "192.0.2.1": other}


@given(
    st.lists(st.floats(min_value=0.0, max_value=200.0), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=29),
)
def test_a_restart_changes_no_ban_that_follows_it(gaps: list[float], restart_at: int) -> None:
    """One offender, one refusal a ban (offences=1), refusals `gaps` seconds apart; at one of them the
    worker restarts, taking back only what it would save (own and chains). Every refusal from then on
    gets the same answer as in a worker that never restarted."""
    settings = {"offences": 1, "durations": [5.0, 50.0, 500.0], "memory": 100.0}
    steady = table(**settings)
    restarted: BanTable | None = None
    now = T0
    for index, gap in enumerate(gaps):
        now += gap
        if index == min(restart_at, len(gaps) - 1):
            restarted = table(**settings)
            restarted.adopt(steady.own(now), steady.chains(now))
        expected = steady.offence(IP, PREFIX, now)
        if restarted is not None:
            assert restarted.offence(IP, PREFIX, now) == expected


# --- bounded memory ------------------------------------------------------------------------------


def test_a_flood_of_distinct_offenders_stays_bounded_and_keeps_every_ban() -> None:
    bans = table(max_entries=1000)
    kept = [manual(f"198.51.100.{i}", T0 + 86400 * (i + 1)) for i in range(5)]
    bans.merge(kept)
    repeat = offend(bans, 30, T0, ip="192.0.2.1")
    assert repeat is not None
    now = T0
    for i in range(100_000):
        now += 0.0005  # 50 s in all: the automatic ban is still on at the end
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        assert bans.offence(ip, client_prefix(ip), now) is None
        assert len(bans) <= 1000
    for ban in [*kept, repeat]:
        assert bans.check(ban.target, client_prefix(ban.target), now) == ban
    # a new heavy offender is still tracked and banned: the flood's one-off records make way for it
    assert offend(bans, 30, now, ip="192.0.2.99") is not None


def test_when_full_of_bans_new_offenders_never_push_one_out() -> None:
    bans = table(max_entries=100, offences=1, durations=[60.0])
    lengths = list(range(1000, 1200))
    random.Random(7).shuffle(lengths)
    stored = [manual(f"198.51.{i >> 8}.{i & 255}", T0 + length) for i, length in enumerate(lengths)]
    bans.merge(stored)
    assert len(bans) == 100
    # new offenders never push out a ban (so nor do the short bans they would earn)
    for i in range(10_000):
        ip = f"10.0.{i >> 8}.{i & 255}"
        assert bans.offence(ip, client_prefix(ip), T0 + 1) is None
    kept = [ban for ban in stored if bans.check(ban.target, client_prefix(ban.target), T0 + 1)]
    assert len(kept) == 100 and len(bans) == 100 and bans.own(T0 + 1) == []
    assert all(ban.until is not None and ban.until >= T0 + 1100 for ban in kept), "the longest stay"


def test_a_merge_into_a_table_full_of_offenders_makes_room_for_the_operators_ban() -> None:
    bans = table(max_entries=10)
    for i in range(10):
        bans.offence(f"10.0.0.{i}", "10.0.0.0/24", T0)
    assert len(bans) == 10
    bans.merge([manual(IP, None)])
    assert len(bans) == 10
    assert bans.check(IP, PREFIX, T0 + 1) is not None


def test_expired_entries_are_evicted_first() -> None:
    bans = table(max_entries=10, offences=2)
    bans.merge([manual(f"198.51.100.{i}", T0 + 10) for i in range(5)])
    for i in range(5):
        assert bans.offence(f"10.0.0.{i}", "10.0.0.0/24", T0) is None
    assert len(bans) == 10
    assert bans.offence("10.0.0.99", "10.0.0.0/24", T0 + 20) is None  # a new offender needs room
    assert len(bans) == 6  # the five expired bans went; the five live offender records stayed
    assert bans.offence("10.0.0.0", "10.0.0.0/24", T0 + 21) is not None, "its first refusal counted"


def test_merge_beyond_capacity_keeps_the_longest() -> None:
    bans = table(max_entries=10)
    stored = [Ban(f"198.51.100.{i}", T0 + 100 + i, "x", "auto", 0, T0) for i in range(30)]
    bans.merge(stored)
    assert len(bans) == 10
    banned = {ban.target for ban in stored if bans.check(ban.target, client_prefix(ban.target), T0)}
    assert banned == {f"198.51.100.{i}" for i in range(20, 30)}
