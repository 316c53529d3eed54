"""CSV bulk scheduling: reading, per-row checks, duplicates, modes, safe export."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest

from business.social.bulk import (
    ALL_OR_NOTHING,
    VALID_ROWS,
    BulkFileError,
    BulkRow,
    ChannelRef,
    ExistingPost,
    escape_cell,
    export_csv,
    import_csv,
    unescape_cell,
)
from business.social.networks.base import MediaItem

NOW = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
CHANNELS = {
    "ch-x": ChannelRef("ch-x", "x"),
    "@band": ChannelRef("ch-x", "x"),
    "ch-ig": ChannelRef("ch-ig", "instagram"),
    "ch-fb": ChannelRef("ch-fb", "facebook"),
}
HEADER = "datetime,channel,text,link,media,first_comment\n"


def when(days: float) -> str:
    """ISO 8601 time ``days`` after NOW, with an offset."""
    return datetime.fromtimestamp(NOW + days * DAY, UTC).isoformat()


def rows_csv(n: int, channel: str = "ch-x", delimiter: str = ",") -> str:
    lines = [HEADER.replace(",", delimiter)]
    for i in range(n):
        lines.append(delimiter.join([when(1 + i / 100), channel, f"Post number {i} #release",
                                     "", "", ""]) + "\n")
    return "".join(lines)


def read(data: bytes | str, **kwargs: object):
    kwargs.setdefault("now", NOW)
    return import_csv(data, CHANNELS, **kwargs)  # type: ignore[arg-type]


def only_error(result) -> tuple[int, str, str]:
    (error,) = result.errors
    return error.row, error.column, error.code


@pytest.mark.parametrize("n", [350, 10_000])
def test_a_large_file_is_read_fast_and_every_row_kept(n: int) -> None:
    data = rows_csv(n).encode()
    start = time.perf_counter()
    result = read(data)
    seconds = time.perf_counter() - start
    print(f"\nbulk import: {n} rows in {seconds:.3f} s = {n / seconds:,.0f} rows/s")
    assert result.ok and result.total_rows == n and len(result.to_schedule) == n
    assert [r.row for r in result.rows[:3]] == [2, 3, 4]
    first = result.rows[0]
    assert (first.channel_id, first.network, first.publish_at) == ("ch-x", "x", NOW + DAY)


def test_utf8_bom_is_not_part_of_the_first_column_name() -> None:
    data = ("\ufeff" + HEADER + f"{when(1)},ch-x,Café ☕,,,\n").encode()
    result = read(data)
    assert result.ok and result.rows[0].text == "Café ☕"
    assert read(data.decode()).rows[0].text == "Café ☕"  # text with a BOM char too


def test_utf16_with_bom_is_read() -> None:
    data = (HEADER + f"{when(1)},ch-x,日本のライブ 🎤,,,\n").encode("utf-16")
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert read(data).rows[0].text == "日本のライブ 🎤"


def test_latin1_file_is_refused_with_what_to_do() -> None:
    data = (HEADER + f"{when(1)},ch-x,plain,,,\n{when(2)},ch-x,Café,,,\n").encode("latin-1")
    with pytest.raises(BulkFileError) as caught:
        read(data)
    message = str(caught.value)
    assert "not UTF-8" in message and "line 3 has byte 0xE9" in message
    assert "Save it as UTF-8" in message


def test_a_stream_is_read_and_left_open() -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # noqa: ANN001
            chunk = self.inner.read(min(len(buffer), 7))  # tiny reads
            buffer[:len(chunk)] = chunk
            return len(chunk)

    stream = Unseekable(("\ufeff" + rows_csv(50)).encode())
    result = read(stream)
    assert result.ok and len(result.rows) == 50 and not stream.closed
    seekable = io.BytesIO(rows_csv(3).encode())
    assert len(read(seekable).rows) == 3 and not seekable.closed


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_delimiter_is_taken_from_the_header(delimiter: str) -> None:
    data = rows_csv(5, delimiter=delimiter)
    data = data.replace("Post number 1 #release", '"Post, number; 1"')
    result = read(data)
    assert result.ok and len(result.rows) == 5
    assert result.rows[1].text == "Post, number; 1"


def test_excel_sep_line_names_the_delimiter() -> None:
    data = "sep=;\n" + rows_csv(2, delimiter=";")
    assert len(read(data).rows) == 2


def test_missing_columns_refuse_the_file_and_name_them() -> None:
    with pytest.raises(BulkFileError, match="lacks channel"):
        read("datetime,text\n2030-01-02T00:00:00+00:00,hi\n")
    with pytest.raises(BulkFileError, match="empty"):
        read(b"")


def test_too_many_rows_refuse_the_file() -> None:
    with pytest.raises(BulkFileError, match="more than 5 rows"):
        read(rows_csv(6), max_rows=5)


@pytest.mark.parametrize(("cells", "column", "code"), [
    ("2030-13-01T10:00:00+00:00,ch-x,hi", "datetime", "bad_datetime"),
    ("01/05/2030 10:00,ch-x,hi", "datetime", "bad_datetime"),
    ("2030-01-05,ch-x,hi", "datetime", "bad_datetime"),
    ("2030-01-05T10:00:00,ch-x,hi", "datetime", "no_timezone"),
    (",ch-x,hi", "datetime", "datetime_missing"),
    ("2029-12-31T23:59:00+00:00,ch-x,hi", "datetime", "in_the_past"),
])
def test_bad_or_past_times_are_errors_of_their_cell(cells: str, column: str, code: str) -> None:
    result = read("datetime,channel,text\n" + cells + "\n")
    assert only_error(result) == (2, column, code)
    assert not result.rows


@pytest.mark.parametrize(("cells", "column", "code"), [
    ("05/01/2030,10:00,Europe/Paris", "date", "bad_date"),
    ("2030-05-01,25:00,Europe/Paris", "time", "bad_time"),
    ("2030-05-01,10:00,Mars/Olympus", "timezone", "unknown_timezone"),
    ("2030-05-01,10:00,", "date", "no_timezone"),
])
def test_date_time_and_zone_columns(cells: str, column: str, code: str) -> None:
    result = read("date,time,timezone,channel,text\n" + cells + ",ch-x,hi\n")
    assert only_error(result) == (2, column, code)


def test_date_time_zone_columns_give_the_instant_in_that_zone() -> None:
    result = read("date,time,timezone,channel,text\n2030-07-01,18:30,Europe/Paris,ch-x,hi\n")
    assert result.rows[0].publish_at == datetime(2030, 7, 1, 16, 30, tzinfo=UTC).timestamp()
    result = read("datetime,channel,text\n2030-07-01 18:30,ch-x,hi\n",
                  default_zone="America/New_York")
    assert result.rows[0].publish_at == datetime(2030, 7, 1, 22, 30, tzinfo=UTC).timestamp()


def test_a_time_in_the_dst_gap_is_an_error_naming_it() -> None:
    result = read("date,time,timezone,channel,text\n2030-03-31,02:30,Europe/Paris,ch-x,hi\n")
    (error,) = result.errors
    assert (error.column, error.code) == ("time", "dst_gap")
    assert "does not exist in Europe/Paris" in error.message and "03:30" in error.message


def test_a_repeated_hour_is_an_error_asking_for_the_offset() -> None:
    result = read("datetime,timezone,channel,text\n"
                  "2030-11-03 01:30,America/New_York,ch-x,hi\n")
    (error,) = result.errors
    assert (error.column, error.code) == ("datetime", "dst_ambiguous")
    assert "happens twice in America/New_York" in error.message
    assert "-04:00" in error.message and "-05:00" in error.message


def test_unknown_channel_is_an_error_in_the_column_as_the_file_names_it() -> None:
    result = read("Date Time,Channel,Text\n" + f"{when(1)},@nobody,hi\n")
    (error,) = result.errors
    assert (error.row, error.column, error.code) == (2, "Channel", "unknown_channel")
    assert "'@nobody'" in error.message
    assert read("datetime,channel,text\n" + f"{when(1)},@BAND,hi\n").ok  # case and @ ignored


def test_text_rules_follow_the_channels_network() -> None:
    long = "a" * 281
    result = read(HEADER + f"{when(1)},ch-x,{long},,,\n{when(1)},ch-fb,{long},,,\n"
                  f"{when(1)},ch-ig,caption,,,\n")
    assert [(e.row, e.column, e.code) for e in result.errors] == [
        (2, "text", "text_too_long"), (4, "media", "media_required")]
    assert [r.row for r in result.rows] == [3]


def test_media_refs_are_checked_by_name_or_through_the_resolver() -> None:
    data = (HEADER + f"{when(1)},ch-ig,a,,https://cdn.example.com/cover.png,\n"
            f"{when(1)},ch-ig,b,,https://cdn.example.com/render?id=7,\n"
            f"{when(1)},ch-ig,c,,ftp://example.com/a.jpg,\n")
    result = read(data)
    assert [(e.row, e.column, e.code) for e in result.errors] == [
        (2, "media", "media_type"), (4, "media", "bad_media")]
    assert [(w.row, w.code) for w in result.warnings] == [(3, "media_unchecked")]
    assets = {"asset-1": MediaItem("image", "image/jpeg", 12 * 1024 * 1024, "/a/big.jpg")}
    result = read(HEADER + f"{when(1)},ch-ig,a,,asset-1,\n{when(1)},ch-ig,b,,asset-2,\n",
                  resolve_media=assets.get)
    assert [(e.row, e.code) for e in result.errors] == [(2, "image_too_large"),
                                                        (3, "unknown_media")]


def test_duplicates_within_the_file_within_three_days() -> None:
    data = (HEADER + f"{when(1)},ch-x,New single out now,,,\n"
            f"{when(4)},ch-x,  new SINGLE   out now ,,,\n"          # exactly 3 days later
            f"{when(4.001)},@band,New single out now,,,\n"          # just over 3 days
            f"{when(1)},ch-fb,New single out now,,,\n")             # another channel
    result = read(data)
    assert [(e.row, e.column, e.code) for e in result.errors] == [(3, "text", "duplicate")]
    assert "row 2" in result.errors[0].message
    assert [r.row for r in result.rows] == [2, 4, 5]


def test_duplicates_against_existing_posts() -> None:
    existing = [ExistingPost("ch-x", NOW + 2 * DAY, "Tour dates!"),
                ExistingPost("ch-fb", NOW + DAY, "Something else")]
    data = HEADER + f"{when(1)},ch-x,tour dates!,,,\n{when(6)},ch-x,Tour dates!,,,\n"
    result = read(data, existing=iter(existing))
    assert only_error(result) == (2, "text", "duplicate")
    assert "already scheduled" in result.errors[0].message


def test_all_or_nothing_schedules_nothing_when_a_row_fails() -> None:
    data = HEADER + f"{when(1)},ch-x,good,,,\n{when(1)},nobody,bad,,,\n"
    strict = read(data, mode=ALL_OR_NOTHING)
    assert len(strict.rows) == 1 and strict.error_rows == 1 and strict.to_schedule == []
    lenient = read(data, mode=VALID_ROWS)
    assert [r.text for r in lenient.to_schedule] == ["good"]
    assert len(read(rows_csv(3), mode=ALL_OR_NOTHING).to_schedule) == 3
    with pytest.raises(ValueError, match="unknown mode"):
        read(data, mode="some")


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "  =1+1",
            "'=quoted", "'tis the season", "''", "plain", "", "a=b"]


@pytest.mark.parametrize("value", FORMULAS)
def test_escape_and_unescape_are_inverse(value: str) -> None:
    escaped = escape_cell(value)
    assert unescape_cell(escaped) == value
    assert escaped.lstrip(" ")[:1] not in set("=+-@\t\r")


def test_export_never_writes_a_formula_raw_and_round_trips() -> None:
    rows = [BulkRow(2 + i, "ch-x", "x", NOW + DAY * (1 + 4 * i), text,  # no duplicates
                    "https://example.com/a" if i == 0 else None,
                    ("asset-1", "https://cdn.example.com/a.jpg") if i == 1 else (),
                    "-first comment" if i == 2 else None)
            for i, text in enumerate(t for t in FORMULAS if t.strip())]
    exported = export_csv(rows)
    assert "=cmd|' /C calc'!A0" in exported
    for record in csv.reader(io.StringIO(exported)):
        for cell in record:
            assert cell.lstrip(" ")[:1] not in set("=+-@\t\r"), cell
    cells = [record[2] for record in csv.reader(io.StringIO(exported))]
    assert "'=cmd|' /C calc'!A0" in cells
    back = read(exported, resolve_media=lambda ref: MediaItem(
        "image", "image/jpeg", 1000, ref))
    assert back.errors == [] and back.rows == rows


def test_export_with_a_zone_keeps_the_instant() -> None:
    row = BulkRow(2, "ch-x", "x", NOW + DAY, "hi")
    exported = export_csv([row], zone="Asia/Tokyo")
    assert "2030-01-02T09:00:00+09:00" in exported
    assert read(exported).rows == [row]


def test_an_offset_contradicting_the_rows_timezone_is_an_error_naming_both() -> None:
    """Paris is at +02:00 in July: a row saying 18:30+01:00 in Europe/Paris means two
    different instants, and which one the author meant cannot be told."""
    result = read("datetime,timezone,channel,text\n"
                  "2030-07-01T18:30:00+01:00,Europe/Paris,ch-x,hi\n")
    (error,) = result.errors
    assert (error.column, error.code) == ("datetime", "offset_contradicts_timezone")
    assert "+01:00" in error.message and "+02:00" in error.message and not result.rows
    result = read("date,time,timezone,channel,text\n2030-07-01,18:30+01:00,Europe/Paris,ch-x,hi\n")
    assert [(e.column, e.code) for e in result.errors] == [("time", "offset_contradicts_timezone")]
    result = read("datetime,timezone,channel,text\n"
                  "2030-07-01T18:30:00+02:00,Europe/Paris,ch-x,hi\n")  # they agree
    assert result.rows[0].publish_at == datetime(2030, 7, 1, 16, 30, tzinfo=UTC).timestamp()
