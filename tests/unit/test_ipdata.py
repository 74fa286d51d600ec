"""ASN / country data: iptoasn tables (plain and gzip), MaxMind .mmdb files, chains, and file errors."""

from __future__ import annotations

import gzip
import ipaddress
import itertools
import shutil
from pathlib import Path

import mmdb_writer
import netaddr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shieldwall.net.ipdata import DataFileError, IpData, IpDataChain, IpInfo, MmdbData, open_ipdata

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ipdata"
SAMPLE = FIXTURES / "ip2asn-sample.tsv"

GOOGLE = IpInfo(15169, "US", "GOOGLE")
GTELECOM = IpInfo(38803, "AU", "GTELECOM-AUSTRALIA Gtelecom Pty Ltd")


@pytest.fixture(scope="module")
def sample() -> IpData:
    return IpData.load(SAMPLE)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("1.0.0.0", IpInfo(13335, "US", "CLOUDFLARENET")),  # first address of a range
        ("1.0.0.255", IpInfo(13335, "US", "CLOUDFLARENET")),  # last address of a range
        ("1.0.1.0", None),  # first address of an unrouted range
        ("1.0.3.255", None),  # last address of an unrouted range
        ("1.0.4.0", GTELECOM),
        ("1.0.15.255", GTELECOM),  # two adjacent ranges of one AS
        ("1.0.16.0", None),  # just past them: in no range at all
        ("0.0.0.0", None),
        ("8.8.8.7", GOOGLE),
        ("8.8.7.255", None),
        ("8.8.9.0", None),
        ("66.249.66.1", GOOGLE),
        ("203.0.113.127", IpInfo(64500, "", "EXAMPLE-NO-COUNTRY")),  # routed, country "None"
        ("203.0.113.128", None),
        ("255.255.255.255", IpInfo(64511, "DE", "EXAMPLE-LAST-BLOCK")),  # country upper-cased
        ("::ffff:66.249.66.1", GOOGLE),  # IPv4-mapped: looked up as IPv4
        ("::ffff:0:0", None),
        ("::1", None),  # unrouted IPv6
        ("2001:4860::", GOOGLE),
        ("2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", GOOGLE),
        ("2001:4861::", None),
        ("2001:db8::", IpInfo(64501, "NL", "EXAMPLE-FIRST-IN-64")),
        ("2001:db8::ffff", IpInfo(64501, "NL", "EXAMPLE-FIRST-IN-64")),
        ("2001:db8::1:0", None),  # a gap inside one /64: the low 64 bits decide
        ("2001:db8::1:ffff", None),
        ("2001:db8::2:0", IpInfo(64502, "FR", "EXAMPLE-SECOND-IN-64")),
        ("2001:db8::2:ffff", IpInfo(64502, "FR", "EXAMPLE-SECOND-IN-64")),
        ("2001:db8::3:0", None),
        ("2001:db8:0:0:ffff:ffff:ffff:ffff", None),
        ("2001:db8:0:1::", IpInfo(64503, "JP", "EXAMPLE-NEXT-64")),
        ("2001:DB8:0:1:FFFF:FFFF:FFFF:FFFF", IpInfo(64503, "JP", "EXAMPLE-NEXT-64")),
        ("2001:db8:0:2::", None),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", IpInfo(64511, "DE", "EXAMPLE-LAST-BLOCK")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:fffe:ffff", None),
    ],
)
def test_lookup_at_range_boundaries(sample, ip, expected):
    assert sample.lookup(ip) == expected


@pytest.mark.parametrize(
    "text", ["", "example.org", "1.2.3", "01.0.0.1", "1.0.0.256", "fe80::1%eth0", "::ffff:1"]
)
def test_text_that_is_not_an_address_is_in_no_range(sample, text):
    assert sample.lookup(text) is None


def test_only_routed_ranges_are_held_and_equal_records_are_shared(sample):
    assert len(sample) == 12  # of 15 lines, 3 unrouted
    # One IpInfo per distinct (ASN, country, name): adjacent ranges of one AS, and IPv4 and IPv6
    # blocks of one AS, share it (memory), and a cached lookup hands back that same object.
    assert sample.lookup("1.0.4.0") is sample.lookup("1.0.8.0")
    assert sample.lookup("255.255.255.255") is sample.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:1")


def test_gzip_file_is_recognised_by_content(tmp_path):
    packed = tmp_path / "ip2asn-combined.tsv.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    disguised = tmp_path / "ip2asn.data"  # no .gz suffix: the magic bytes decide
    shutil.copy(packed, disguised)
    for path in (packed, disguised):
        data = IpData.load(path)
        assert data.lookup("66.249.66.1") == GOOGLE
        assert data.lookup("2001:db8::2:1") == IpInfo(64502, "FR", "EXAMPLE-SECOND-IN-64")
        assert len(data) == 12


def test_crlf_line_endings_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "crlf.tsv"
    path.write_bytes(b"\r\n1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\r\n\r\n")
    assert IpData.load(path).lookup("1.0.0.9") == IpInfo(13335, "US", "CLOUDFLARENET")


GOOD = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET"


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("1.0.1.0\t1.0.1.255\t13335\tUS", "expected 5 tab-separated fields, found 4"),
        ("1.0.1.0 1.0.1.255 13335 US CLOUDFLARENET", "expected 5 tab-separated fields, found 1"),
        ("1.0.1.0\t1.0.1.999\t13335\tUS\tX", "not an IPv4 address: '1.0.1.999'"),
        ("1.0.1.0\t2001:db8::\t13335\tUS\tX", "not an IPv4 address: '2001:db8::'"),
        ("2001:db8::\t1.0.1.0\t13335\tUS\tX", "not an IPv6 address: '1.0.1.0'"),
        ("1.0.2.0\t1.0.1.0\t13335\tUS\tX", "the range ends before it starts"),
        ("1.0.0.128\t1.0.1.0\t13335\tUS\tX", "overlaps or precedes"),
        ("0.9.0.0\t0.9.0.255\t13335\tUS\tX", "overlaps or precedes"),
        ("1.0.1.0\t1.0.1.255\tAS13335\tUS\tX", "not an AS number: 'AS13335'"),
        ("1.0.1.0\t1.0.1.255\t4294967296\tUS\tX", "not an AS number"),
        ("1.0.1.0\t1.0.1.255\t-1\tUS\tX", "not an AS number"),
        ("1.0.1.0\t1.0.1.255\t13335\tUSA\tX", "not a two-letter country code: 'USA'"),
        ("1.0.1.0\t1.0.1.255\t13335\t1A\tX", "not a two-letter country code"),
    ],
)
def test_malformed_line_is_reported_with_file_and_line_number(tmp_path, bad_line, message):
    path = tmp_path / "broken.tsv"
    path.write_text(f"{GOOD}\n\n{bad_line}\n{GOOD}\n", encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        IpData.load(path)
    assert caught.value.line == 3  # the blank line still counts
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert message in str(caught.value)


def test_unrouted_lines_must_be_in_order_too(tmp_path):
    path = tmp_path / "unsorted.tsv"
    path.write_text(f"{GOOD}\n1.0.0.0\t1.0.0.9\t0\tNone\tNot routed\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r":2: the range overlaps"):
        IpData.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no lines"),
        (b"\n\n", "no lines"),  # blank lines only: nothing was read
        (b"0.0.0.0\t0.255.255.255\t0\tNone\tNot routed\n", "no routed address ranges"),
    ],
)
def test_file_without_routed_ranges_is_refused(tmp_path, content, message):
    path = tmp_path / "empty.tsv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as caught:
        IpData.load(path)
    assert caught.value.line is None


def test_missing_file_and_directory_are_reported_with_their_names(tmp_path):
    with pytest.raises(DataFileError, match=r"nowhere\.tsv: cannot read: No such file or directory"):
        IpData.load(tmp_path / "nowhere.tsv")
    with pytest.raises(DataFileError, match="cannot read: Is a directory"):
        IpData.load(tmp_path)


def test_truncated_and_corrupt_gzip_are_reported(tmp_path):
    packed = gzip.compress(SAMPLE.read_bytes())
    cut = tmp_path / "cut.tsv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataFileError, match=r"cut\.tsv\.gz: the gzip stream is damaged or cut short"):
        IpData.load(cut)
    corrupt = tmp_path / "corrupt.tsv.gz"
    corrupt.write_bytes(packed[:20] + bytes(b ^ 0x55 for b in packed[20:]))
    with pytest.raises(DataFileError, match=r"corrupt\.tsv\.gz: "):
        IpData.load(corrupt)


@pytest.mark.parametrize("country", ["None", "Unknown", "ZZ", ""])
def test_placeholders_for_no_country_read_as_empty(tmp_path, country):
    path = tmp_path / "countries.tsv"
    path.write_text(f"1.0.0.0\t1.0.0.255\t64500\t{country}\tX\n", encoding="utf-8")
    assert IpData.load(path).lookup("1.0.0.1") == IpInfo(64500, "", "X")


def test_a_stray_byte_in_a_description_does_not_refuse_the_file(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"1.0.0.0\t1.0.0.255\t64500\tDE\tM\xfcller GmbH\n")
    info = IpData.load(path).lookup("1.0.0.1")
    assert info is not None
    assert (info.asn, info.as_name) == (64500, "M\ufffdller GmbH")


# Ranges for the property test: disjoint, ascending, some adjacent, some with gaps, IPv6 ones
# packed into a few /64s so the high-half ties are exercised.
@st.composite
def _tables(draw: st.DrawFn, version: int) -> list[tuple[int, int, int]]:
    top = (1 << 32) - 1 if version == 4 else (1 << 128) - 1
    base = 0 if version == 4 else draw(st.sampled_from([0, 0x20010DB8 << 96, top - (3 << 64)]))
    span = (1 << 16) if version == 4 else (3 << 64)
    cuts = sorted(draw(st.sets(st.integers(0, span), min_size=2, max_size=24)))
    ranges = []
    for start, after in itertools.pairwise(cuts):
        if draw(st.booleans()):  # this stretch is a range (else a gap)
            ranges.append((base + start, min(base + after - 1, top), draw(st.integers(0, 3))))
    return ranges


def _text(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.sampled_from([4, 6]), data=st.data())
def test_lookup_agrees_with_a_linear_scan(tmp_path, version, data):
    ranges = data.draw(_tables(version))
    lines = [
        f"{_text(version, start)}\t{_text(version, end)}\t{asn}\t{'None' if asn == 0 else 'NL'}\tAS{asn}"
        for start, end, asn in ranges
    ]
    other_family = "2001:db8::\t2001:db8::1\t7\tUS\tX" if version == 4 else GOOD  # never empty
    path = tmp_path / "table.tsv"
    path.write_text("\n".join([other_family, *lines]) + "\n", encoding="utf-8")
    table = IpData.load(path)
    limit = 1 << (32 if version == 4 else 128)
    probes = [v for start, end, _ in ranges for v in (start - 1, start, end, end + 1) if 0 <= v < limit]
    probes += data.draw(st.lists(st.integers(0, limit - 1), max_size=3))
    for value in probes:
        if version == 6 and 0xFFFF00000000 <= value <= 0xFFFFFFFFFFFF:
            continue  # IPv4-mapped: looked up as IPv4, not in this table
        expected = next((asn for start, end, asn in ranges if start <= value <= end and asn), None)
        info = table.lookup(_text(version, value))
        assert (info.asn if info else None) == expected, _text(version, value)


def test_open_ipdata_gives_the_table_for_one_tsv_file():
    data = open_ipdata([SAMPLE])
    assert isinstance(data, IpData)
    assert data.lookup("8.8.8.8") == GOOGLE
    with pytest.raises(ValueError, match="no data files"):
        open_ipdata([])


# MaxMind databases: written for the test with mmdb-writer, read with maxminddb.


@pytest.fixture(scope="module")
def geolite(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mmdb")
    asn = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    asn.insert_network(
        netaddr.IPSet(["66.249.64.0/19", "2001:4860::/32"]),
        {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"},
    )
    asn.insert_network(netaddr.IPSet(["198.51.100.0/24"]), {"autonomous_system_number": 64496})
    country = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
    country.insert_network(netaddr.IPSet(["66.249.0.0/16"]), {"country": {"iso_code": "US"}})
    country.insert_network(
        netaddr.IPSet(["192.0.2.0/24"]),  # no "country": where the block is registered instead
        {"registered_country": {"iso_code": "se"}},
    )
    country.insert_network(netaddr.IPSet(["203.0.113.0/24"]), {"continent": {"code": "EU"}})
    paths = folder / "GeoLite2-ASN.mmdb", folder / "GeoLite2-Country.mmdb"
    asn.to_db_file(str(paths[0]))
    country.to_db_file(str(paths[1]))
    return paths


def test_mmdb_asn_database(geolite):
    data = MmdbData(geolite[0])
    try:
        assert data.lookup("66.249.66.1") == IpInfo(15169, "", "GOOGLE")
        assert data.lookup("::ffff:66.249.66.1") == IpInfo(15169, "", "GOOGLE")  # mapped: as IPv4
        assert data.lookup("2001:4860::8888") == IpInfo(15169, "", "GOOGLE")
        assert data.lookup("198.51.100.7") == IpInfo(64496, "", "")
        assert data.lookup("1.1.1.1") is None
        assert data.lookup("not an address") is None
    finally:
        data.close()


def test_mmdb_country_database(geolite):
    data = MmdbData(geolite[1])
    assert data.lookup("66.249.66.1") == IpInfo(0, "US", "")
    assert data.lookup("192.0.2.1") == IpInfo(0, "SE", "")
    assert data.lookup("203.0.113.1") is None  # a record with neither ASN nor country
    data.close()


def test_chain_takes_asn_and_country_from_separate_files(geolite):
    data = open_ipdata(list(geolite))
    assert isinstance(data, IpDataChain)
    assert data.lookup("66.249.66.1") == IpInfo(15169, "US", "GOOGLE")
    assert data.lookup("66.249.1.1") == IpInfo(0, "US", "")  # the country file alone knows it
    assert data.lookup("2001:4860::1") == IpInfo(15169, "", "GOOGLE")
    assert data.lookup("10.0.0.1") is None


def test_chain_prefers_the_first_source_that_knows(geolite):
    data = open_ipdata([geolite[1], SAMPLE])  # country from the mmdb; the ASN only the table has
    assert data.lookup("8.8.8.8") == GOOGLE
    assert data.lookup("66.249.66.1") == IpInfo(15169, "US", "GOOGLE")
    assert data.lookup("203.0.113.5") == IpInfo(64500, "", "EXAMPLE-NO-COUNTRY")


def test_unusable_mmdb_files_are_reported(tmp_path):
    with pytest.raises(DataFileError, match=r"missing\.mmdb: cannot read"):
        MmdbData(tmp_path / "missing.mmdb")
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"this is not a MaxMind database" * 10)
    with pytest.raises(DataFileError, match=r"garbage\.mmdb: not a MaxMind DB file"):
        open_ipdata([garbage])
