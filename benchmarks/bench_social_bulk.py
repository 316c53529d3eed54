"""Social bulk scheduling: rows per second of a 10,000-row CSV import.

``import_csv`` (decode, header and delimiter, per-row time zones, channel lookup, the
network's text rules, media by name, duplicates) against the least any import must do:
``csv.DictReader`` over the same bytes, decoded. Rows are spread over X, Instagram and
Bluesky channels, with a URL, a hashtag, a mention, an emoji and some CJK text, half with
an offset and half with a time-zone column.

Run: ``python -m pytest benchmarks/bench_social_bulk.py --benchmark-enable -s``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from benchmarks.conftest import SMOKE, best_time, measure, record
from business.social.bulk import ChannelRef, import_csv

ROWS = 500 if SMOKE else 10_000
NOW = datetime(2030, 1, 1, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")
CHANNELS = {"@x": ChannelRef("c-x", "x"), "@ig": ChannelRef("c-ig", "instagram"),
            "@sky": ChannelRef("c-sky", "bluesky")}


def _file(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["datetime", "timezone", "channel", "text", "link", "media"])
    channels = list(CHANNELS)
    for i in range(rows):
        at = NOW + timedelta(hours=2 + i)
        # Tokyo has no DST: no row lands in a gap or a repeated hour
        when = at.isoformat() if i % 2 else f"{at.astimezone(TOKYO):%Y-%m-%d %H:%M}"
        zone = "" if i % 2 else "Asia/Tokyo"
        channel = channels[i % 3]
        text = (f"Release {i}: new single out now 🎧 東京 with @guest{i % 50} "
                f"#newmusic https://example.com/r/{i}")
        media = f"https://cdn.example.com/covers/{i}.jpg" if channel == "@ig" else ""
        writer.writerow([when, zone, channel, text, "", media])
    return ("\ufeff" + out.getvalue()).encode()


def test_bulk_import_against_dictreader(benchmark) -> None:  # noqa: ANN001
    data = _file(ROWS)
    now = NOW.timestamp()

    def baseline() -> int:
        return len(list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")))))

    def ours() -> int:
        result = import_csv(data, CHANNELS, now=now)
        assert result.ok and len(result.rows) == ROWS, result.errors[:3]
        return len(result.rows)

    base_s = best_time(baseline)
    seconds = measure(benchmark, ours)
    record(benchmark, rows=ROWS, rows_per_s=ROWS / seconds,
           dictreader_rows_per_s=ROWS / base_s, ratio_to_dictreader=seconds / base_s)
