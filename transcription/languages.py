"""The languages Whisper knows, by code, and validation of a requested language."""

from __future__ import annotations

import unicodedata

from .errors import LanguageError

#: Whisper's language codes with English names (multilingual models know all of them).
LANGUAGES: dict[str, str] = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "as": "Assamese",
    "az": "Azerbaijani", "ba": "Bashkir", "be": "Belarusian", "bg": "Bulgarian",
    "bn": "Bengali", "bo": "Tibetan", "br": "Breton", "bs": "Bosnian", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fo": "Faroese", "fr": "French", "gl": "Galician", "gu": "Gujarati",
    "ha": "Hausa", "haw": "Hawaiian", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian",
    "is": "Icelandic", "it": "Italian", "ja": "Japanese", "jw": "Javanese",
    "ka": "Georgian", "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean",
    "la": "Latin", "lb": "Luxembourgish", "ln": "Lingala", "lo": "Lao", "lt": "Lithuanian",
    "lv": "Latvian", "mg": "Malagasy", "mi": "Maori", "mk": "Macedonian",
    "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese",
    "my": "Myanmar (Burmese)", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "oc": "Occitan", "pa": "Punjabi", "pl": "Polish", "ps": "Pashto",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sa": "Sanskrit",
    "sd": "Sindhi", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sn": "Shona",
    "so": "Somali", "sq": "Albanian", "sr": "Serbian", "su": "Sundanese",
    "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "tg": "Tajik",
    "th": "Thai", "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish", "tt": "Tatar",
    "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "yi": "Yiddish",
    "yo": "Yoruba", "zh": "Chinese", "yue": "Cantonese",
}

_SCRIPT_LANGUAGES = {
    "LATIN": "af az br bs ca cs cy da de en es et eu fi fo fr gl ha haw hr ht hu id is it jw la "
             "lb ln lt lv mg mi ms mt nl nn no oc pl pt ro sk sl sn so sq su sv sw tk tl tr uz "
             "vi yo",
    "CYRILLIC": "ba be bg kk mk mn ru tg tt uk", "GREEK": "el", "ARABIC": "ar fa ps sd ur",
    "HEBREW": "he yi", "DEVANAGARI": "hi mr ne sa", "BENGALI": "as bn", "GUJARATI": "gu",
    "GURMUKHI": "pa", "TAMIL": "ta", "TELUGU": "te", "KANNADA": "kn", "MALAYALAM": "ml",
    "SINHALA": "si", "THAI": "th", "LAO": "lo", "KHMER": "km", "MYANMAR": "my",
    "TIBETAN": "bo", "GEORGIAN": "ka", "ARMENIAN": "hy", "ETHIOPIC": "am", "HANGUL": "ko",
    "CJK": "zh yue",
}

#: Unicode name prefixes of the letters each language is written in.
SCRIPTS: dict[str, tuple[str, ...]] = {
    **{code: (script,) for script, codes in _SCRIPT_LANGUAGES.items() for code in codes.split()},
    "sr": ("CYRILLIC", "LATIN"), "ja": ("HIRAGANA", "KATAKANA", "CJK"),
}


#: Languages written without spaces between words: Whisper's words of them join as they are.
UNSPACED: frozenset[str] = frozenset({"zh", "yue", "ja", "th", "lo", "km", "my", "bo"})


def joined_words(words: list[str] | tuple[str, ...], language: str | None) -> str:
    """``words`` read as text in ``language``: with spaces between them, or, for a
    language written without (:data:`UNSPACED`), none."""
    return ("" if language in UNSPACED else " ").join(words)


def foreign_characters(text: str, language: str, categories: str = "L") -> str:
    """The characters of ``text`` not written in ``language``'s script.

    Only characters of the Unicode major ``categories`` count (``"L"`` letters,
    ``"N"`` numbers); KeyError for a language without a script in :data:`SCRIPTS`.
    """
    prefixes = SCRIPTS[language]
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in categories
                   and not unicodedata.name(ch, "").startswith(prefixes))


def foreign_share(text: str, language: str | None) -> float:
    """Share of the letters of ``text`` not written in ``language``'s script (0 if unknown)."""
    letters = sum(unicodedata.category(ch)[0] == "L" for ch in text)
    if not language or language not in SCRIPTS or not letters:
        return 0.0
    return len(foreign_characters(text, language)) / letters


#: Other spellings users type, mapped to Whisper's codes.
ALIASES: dict[str, str] = {"nb": "no", "jv": "jw", "iw": "he", "cmn": "zh", "fil": "tl"}


def normalize_language(value: str | None) -> str | None:
    """Return Whisper's code for ``value`` (a code, alias or English name).

    ``None``, ``""`` and ``"auto"`` mean "detect" and give ``None``.  An
    unknown value raises :class:`LanguageError` naming it.
    """
    if value is None:
        return None
    key = value.strip().lower()
    if key in ("", "auto"):
        return None
    if key in LANGUAGES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    for code, name in LANGUAGES.items():
        if name.lower() == key:
            return code
    raise LanguageError(
        f"unknown language {value!r}: use a Whisper language code such as 'en' or 'de' "
        "(list them with `dawserver transcribe --list-languages`) or 'auto'"
    )
