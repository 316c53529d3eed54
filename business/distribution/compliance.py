"""The compliance gate: every problem of a release, each with a reason a user can act on.

``check_release`` never stops at the first problem; delivery is blocked while the
report has any issue of severity ``error`` (warnings are shown, not blocking).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pycountry

from business.distribution import artwork as art
from business.distribution import audio as aud
from business.distribution.identifiers import (
    IdentifierError,
    normalize_isrc,
    normalize_iswc,
    normalize_upc,
)
from business.distribution.models import (
    ARTIST_ROLES,
    CONTRIBUTOR_ROLES,
    RELEASE_TYPES,
    WORLDWIDE,
    Release,
    utc_today,
)

MIN_SAMPLE_RATE = 44_100
LEAD_DAYS = 7
TRUE_PEAK_LIMIT_DBTP = -1.0
SILENCE_WARN_S = 2.0
SILENCE_BLOCK_S = 5.0
STORE_NAMES = ("spotify", "apple music", "itunes", "amazon", "youtube", "deezer", "tidal",
               "soundcloud", "pandora", "google play", "napster", "tiktok", "beatport")
_FEAT = re.compile(r"(\(|\[|\s|^)(feat\.?|ft\.|featuring)(\s|$)", re.IGNORECASE)
_PRICE = re.compile(r"([$€£¥]\s?\d)|(\d\s?(usd|eur|gbp|¢))|\bfree\b|\bon sale\b|\bprice\b",
                    re.IGNORECASE)
_EXCLUSIVE = re.compile(r"\bexclusive\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(19|20)\d\d\b")


@dataclass(frozen=True)
class Issue:
    """One problem: a stable code, the field it is in, what to do, and how bad it is."""

    code: str
    field: str
    message: str
    severity: str = "error"


@dataclass
class ComplianceReport:
    """All issues of a release and the measurements behind them."""

    issues: list[Issue] = field(default_factory=list)
    audio: dict[str, dict[str, Any]] = field(default_factory=dict)
    artwork: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """True when nothing blocks delivery."""
        return not self.errors

    @property
    def errors(self) -> list[Issue]:
        """Issues that block delivery."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Issues shown to the user that do not block delivery."""
        return [i for i in self.issues if i.severity == "warning"]

    def codes(self) -> set[str]:
        """The codes of every issue (handy in tests and UIs)."""
        return {i.code for i in self.issues}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"passed": self.passed, "issues": [asdict(i) for i in self.issues],
                "audio": self.audio, "artwork": self.artwork}


class _Checker:
    def __init__(self) -> None:
        self.report = ComplianceReport()

    def error(self, code: str, where: str, message: str) -> None:
        self.report.issues.append(Issue(code, where, message, "error"))

    def warn(self, code: str, where: str, message: str) -> None:
        self.report.issues.append(Issue(code, where, message, "warning"))

    def require(self, value: Any, where: str, what: str) -> bool:
        if isinstance(value, str) and value.strip() or not isinstance(value, str) and value:
            return True
        self.error("missing_field", where, f"{what} is required: fill in {where}")
        return False


def _style(c: _Checker, text: str, where: str) -> None:
    if not text:
        return
    if _FEAT.search(text):
        c.error("feat_in_title", where,
                f"{where} {text!r} names a featured artist; remove 'feat.' from the title and "
                "add the artist to the artists list with role 'featuring'")
    lowered = text.lower()
    for store in STORE_NAMES:
        if re.search(rf"\b{re.escape(store)}\b", lowered):
            c.error("store_name", where,
                    f"{where} {text!r} mentions the store {store!r}; stores reject titles "
                    "that name a store: remove it")
    if _PRICE.search(text):
        c.error("price_in_title", where,
                f"{where} {text!r} mentions a price or 'free'; remove pricing from titles")
    if _EXCLUSIVE.search(text):
        c.error("exclusive_in_title", where,
                f"{where} {text!r} says 'exclusive'; stores reject exclusivity claims in "
                "titles: remove it")


def _identifier(c: _Checker, value: str, where: str, normalize: Any, code: str) -> str | None:
    try:
        return normalize(value)
    except IdentifierError as exc:
        c.error(code, where, f"{where}: {exc}")
        return None


def _check_metadata(c: _Checker, release: Release, today: dt.date) -> None:
    c.require(release.title, "title", "the release title")
    _style(c, release.title, "title")
    _style(c, release.version, "version")
    if not release.primary_artists():
        c.error("missing_field", "artists",
                "the release needs at least one artist with role 'primary'")
    for i, artist in enumerate(release.artists):
        if artist.role not in ARTIST_ROLES:
            c.error("artist_role", f"artists[{i}].role",
                    f"artist role {artist.role!r} is unknown; use one of {list(ARTIST_ROLES)}")
        _style(c, artist.name, f"artists[{i}].name")
    if release.release_type not in RELEASE_TYPES:
        c.error("release_type", "release_type",
                f"release type {release.release_type!r} is unknown; use one of "
                f"{list(RELEASE_TYPES)}")
    c.require(release.label, "label", "the label name (your artist name if self-released)")
    c.require(release.genre, "genre", "a primary genre")
    if c.require(release.language, "language", "the language of the metadata (e.g. 'en')") \
            and not _language_ok(release.language):
        c.error("language", "language",
                f"language {release.language!r} is not an ISO 639 code; use e.g. 'en' or 'deu'")
    for where, line in (("p_line", release.p_line), ("c_line", release.c_line)):
        if c.require(line, where, f"the {where[0].upper()} line (e.g. '2026 Label Name')") \
                and not _YEAR.search(line):
            c.error("line_year", where,
                    f"{where} {line!r} needs the year of first publication, e.g. '2026 {line}'")
    if c.require(release.upc, "upc", "a UPC/EAN barcode (12 or 13 digits)"):
        _identifier(c, release.upc, "upc", normalize_upc, "upc")
    _check_territories(c, release.territories)
    date = release.date()
    if not release.release_date:
        c.error("missing_field", "release_date", "a release date (YYYY-MM-DD) is required")
    elif date is None:
        c.error("release_date", "release_date",
                f"release date {release.release_date!r} must be written YYYY-MM-DD")
    elif date < today:
        c.error("release_date_past", "release_date",
                f"release date {date} is in the past; choose {today} or later")
    elif (date - today).days < LEAD_DAYS:
        c.warn("release_date_soon", "release_date",
               f"release date {date} is under {LEAD_DAYS} days away; stores may not list it "
               f"in time: choose {today + dt.timedelta(days=LEAD_DAYS)} or later")
    if not release.tracks:
        c.error("missing_field", "tracks", "add at least one track")
    elif release.release_type == "single" and len(release.tracks) > 3:
        c.error("release_type", "release_type",
                f"a single has at most 3 tracks, this one has {len(release.tracks)}: "
                "make it an 'ep' or 'album'")
    if any(t.explicit for t in release.tracks) and not release.explicit:
        c.error("explicit", "explicit",
                "a track is marked explicit, so the release must be marked explicit too")


def _language_ok(code: str) -> bool:
    base = code.split("-")[0].lower()
    if len(base) == 2:
        return pycountry.languages.get(alpha_2=base) is not None
    return len(base) == 3 and pycountry.languages.get(alpha_3=base) is not None


def _check_territories(c: _Checker, territories: list[str]) -> None:
    if not territories:
        c.error("missing_field", "territories",
                f"choose where to release: ['{WORLDWIDE}'] or country codes like ['US', 'DE']")
        return
    for code, count in Counter(territories).items():
        if count > 1:
            c.error("territory_duplicate", "territories", f"territory {code!r} is listed twice")
        if code != WORLDWIDE and pycountry.countries.get(alpha_2=str(code)) is None:
            c.error("territory", "territories",
                    f"territory {code!r} is not an ISO 3166 country code (e.g. 'US') or "
                    f"'{WORLDWIDE}'")
    if WORLDWIDE in territories and len(territories) > 1:
        c.error("territory", "territories", f"'{WORLDWIDE}' already covers every country; "
                "remove the other codes")


def _check_tracks(c: _Checker, release: Release) -> None:
    isrcs: Counter[str] = Counter()
    for i, track in enumerate(release.tracks):
        where = f"tracks[{i}]"
        c.require(track.title, f"{where}.title", f"the title of track {i + 1}")
        _style(c, track.title, f"{where}.title")
        _style(c, track.version, f"{where}.version")
        if c.require(track.isrc, f"{where}.isrc", f"the ISRC of track {i + 1}"):
            code = _identifier(c, track.isrc, f"{where}.isrc", normalize_isrc, "isrc")
            if code:
                isrcs[code] += 1
        if track.iswc:
            _identifier(c, track.iswc, f"{where}.iswc", normalize_iswc, "iswc")
        for j, artist in enumerate(track.artists):
            if artist.role not in ARTIST_ROLES:
                c.error("artist_role", f"{where}.artists[{j}].role",
                        f"artist role {artist.role!r} is unknown; use one of "
                        f"{list(ARTIST_ROLES)}")
        if track.artists and not track.primary_artists():
            c.error("missing_field", f"{where}.artists",
                    f"track {i + 1} lists artists but none with role 'primary'")
        for j, person in enumerate(track.contributors):
            if person.role not in CONTRIBUTOR_ROLES:
                c.error("contributor_role", f"{where}.contributors[{j}].role",
                        f"contributor role {person.role!r} is unknown; use one of "
                        f"{list(CONTRIBUTOR_ROLES)}")
        if not any(p.role == "composer" for p in track.contributors):
            c.error("missing_field", f"{where}.contributors",
                    f"track {i + 1} needs at least one composer (the songwriter's full name)")
        if track.language and not _language_ok(track.language):
            c.error("language", f"{where}.language",
                    f"language {track.language!r} is not an ISO 639 code; use e.g. 'en'")
        c.require(track.audio_path, f"{where}.audio_path",
                  f"the audio of track {i + 1} (render the project, then attach it)")
    for code, count in isrcs.items():
        if count > 1:
            c.error("isrc_duplicate", "tracks",
                    f"ISRC {code} is used by {count} tracks; every recording needs its own ISRC")


def _check_artwork(c: _Checker, release: Release) -> None:
    if not c.require(release.artwork_path, "artwork_path", "cover art (JPEG or PNG)"):
        return
    try:
        report = art.analyze_artwork(release.artwork_path)
    except art.ArtworkError as exc:
        c.error("artwork_unreadable", "artwork_path", f"{exc}; upload a JPEG or PNG file")
        return
    c.report.artwork = report.to_dict()
    if report.format not in art.ACCEPTED_FORMATS:
        c.error("artwork_format", "artwork_path",
                f"artwork is {report.format}; export it as JPEG or PNG")
    if report.mode != "RGB":
        c.error("artwork_mode", "artwork_path",
                f"artwork colour mode is {report.mode}; convert it to RGB "
                "(no CMYK, greyscale, palette or transparency)")
    if report.width != report.height:
        c.error("artwork_square", "artwork_path",
                f"artwork is {report.width}x{report.height}; crop it to a square")
    if min(report.width, report.height) < art.MIN_SIZE:
        c.error("artwork_size", "artwork_path",
                f"artwork is {report.width}x{report.height}; it must be at least "
                f"{art.MIN_SIZE}x{art.MIN_SIZE} pixels")
    elif report.looks_upscaled:
        c.error("artwork_upscaled", "artwork_path",
                f"artwork lacks fine detail (score {report.detail_ratio:.2f} < "
                f"{art.UPSCALE_RATIO}); it looks enlarged from a smaller image: export the "
                "original at full resolution")


def _check_audio(c: _Checker, release: Release) -> None:
    for i, track in enumerate(release.tracks):
        if not track.audio_path:
            continue
        where = f"tracks[{i}].audio_path"
        try:
            report = aud.analyze_audio(track.audio_path)
        except aud.AudioError as exc:
            c.error("audio_unreadable", where, f"{exc}; attach a WAV or FLAC render")
            continue
        c.report.audio[str(i)] = report.to_dict()
        if report.format not in aud.ACCEPTED_FORMATS:
            c.error("audio_format", where,
                    f"track {i + 1} is {report.format}; render it as WAV or FLAC")
        elif report.subtype not in aud.ACCEPTED_FORMATS[report.format]:
            c.error("audio_bit_depth", where,
                    f"track {i + 1} is {report.subtype}; render 16- or 24-bit PCM")
        if report.sample_rate < MIN_SAMPLE_RATE:
            c.error("audio_sample_rate", where,
                    f"track {i + 1} is {report.sample_rate} Hz; render at 44100 Hz or more")
        if report.clipping_events:
            c.error("audio_clipping", where,
                    f"track {i + 1} clips {report.clipping_events} times; lower the master "
                    "gain or use a limiter and render again")
        if report.true_peak_dbtp > TRUE_PEAK_LIMIT_DBTP and not report.clipping_events:
            c.warn("audio_true_peak", where,
                   f"track {i + 1} true peak is {report.true_peak_dbtp:.1f} dBTP; keep it at "
                   f"or below {TRUE_PEAK_LIMIT_DBTP} dBTP to avoid distortion after encoding")
        for edge, seconds in (("leading", report.leading_silence_s),
                              ("trailing", report.trailing_silence_s)):
            if seconds >= SILENCE_BLOCK_S:
                c.error(f"audio_{edge}_silence", where,
                        f"track {i + 1} has {seconds:.1f} s of {edge} silence; trim it to under "
                        f"{SILENCE_BLOCK_S:.0f} s")
            elif seconds >= SILENCE_WARN_S:
                c.warn(f"audio_{edge}_silence", where,
                       f"track {i + 1} has {seconds:.1f} s of {edge} silence")
        if not math.isfinite(report.integrated_lufs):
            c.error("audio_silent", where, f"track {i + 1} is silent or shorter than 0.4 s")


def check_release(release: Release, *, today: dt.date | None = None,
                  files: bool = True) -> ComplianceReport:
    """Every problem of ``release`` (its date checked against ``today``, by default UTC's);
    ``files=False`` skips reading audio and artwork."""
    checker = _Checker()
    _check_metadata(checker, release, today or utc_today())
    _check_tracks(checker, release)
    if files:
        _check_artwork(checker, release)
        _check_audio(checker, release)
    return checker.report
