"""Measuring transcription quality on speech synthesised with espeak-ng.

``python -m transcription.evaluation [--model DIR]`` prints the per-language
table of docs/transcription.md (``--cuts``: the text-edit cut figures of
:mod:`transcription.speech` instead): each sample text is spoken by espeak-ng, its
language is detected, it is transcribed with the language forced and scored
by word error rate (character error rate for languages written without
spaces) and by character error rate, which still tells a half-right
transcript from garbage where nearly every word has a wrong letter.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import TranscriptionError
from .languages import foreign_characters

#: Whisper code -> (espeak-ng voice, three short sentences).
SAMPLES: dict[str, tuple[str, str]] = {
    "en": ("en-us", "The weather is very nice today. We are going to the park with our friends."
           " In the evening we cook together and listen to music."),
    "de": ("de", "Das Wetter ist heute sehr schön. Wir gehen mit unseren Freunden in den Park."
           " Am Abend kochen wir zusammen und hören Musik."),
    "es": ("es", "El tiempo está muy bueno hoy. Vamos al parque con nuestros amigos."
           " Por la noche cocinamos juntos y escuchamos música."),
    "fr": ("fr-fr", "Il fait très beau aujourd'hui. Nous allons au parc avec nos amis."
           " Le soir, nous cuisinons ensemble et écoutons de la musique."),
    "it": ("it", "Oggi il tempo è molto bello. Andiamo al parco con i nostri amici."
           " La sera cuciniamo insieme e ascoltiamo la musica."),
    "pt": ("pt", "O tempo está muito bom hoje. Vamos ao parque com os nossos amigos."
           " À noite cozinhamos juntos e ouvimos música."),
    "nl": ("nl", "Het weer is vandaag erg mooi. We gaan met onze vrienden naar het park."
           " In de avond koken we samen en luisteren we naar muziek."),
    "pl": ("pl", "Dzisiaj pogoda jest bardzo ładna. Idziemy do parku z naszymi przyjaciółmi."
           " Wieczorem gotujemy razem i słuchamy muzyki."),
    "sv": ("sv", "Vädret är mycket fint i dag. Vi går till parken med våra vänner."
           " På kvällen lagar vi mat tillsammans och lyssnar på musik."),
    "ru": ("ru", "Сегодня очень хорошая погода. Мы идём в парк с нашими друзьями."
           " Вечером мы вместе готовим и слушаем музыку."),
    "tr": ("tr", "Bugün hava çok güzel. Arkadaşlarımızla birlikte parka gidiyoruz."
           " Akşam birlikte yemek yapıyor ve müzik dinliyoruz."),
    "el": ("el", "Ο καιρός είναι πολύ ωραίος σήμερα. Πηγαίνουμε στο πάρκο με τους φίλους μας."
           " Το βράδυ μαγειρεύουμε μαζί και ακούμε μουσική."),
    "cs": ("cs", "Dnes je velmi hezké počasí. Jdeme do parku s našimi přáteli."
           " Večer spolu vaříme a posloucháme hudbu."),
    "fi": ("fi", "Tänään on todella kaunis sää. Menemme puistoon ystäviemme kanssa."
           " Illalla laitamme yhdessä ruokaa ja kuuntelemme musiikkia."),
    "da": ("da", "Vejret er meget godt i dag. Vi går i parken med vores venner."
           " Om aftenen laver vi mad sammen og hører musik."),
    "no": ("nb", "Været er veldig fint i dag. Vi går til parken med vennene våre."
           " Om kvelden lager vi mat sammen og hører på musikk."),
    "hu": ("hu", "Ma nagyon szép az idő. A barátainkkal megyünk a parkba."
           " Este együtt főzünk és zenét hallgatunk."),
    "ro": ("ro", "Astăzi vremea este foarte frumoasă. Mergem în parc cu prietenii noștri."
           " Seara gătim împreună și ascultăm muzică."),
    "uk": ("uk", "Сьогодні дуже гарна погода. Ми йдемо до парку з нашими друзями."
           " Увечері ми разом готуємо і слухаємо музику."),
    "id": ("id", "Cuaca hari ini sangat bagus. Kami pergi ke taman bersama teman kami."
           " Pada malam hari kami memasak bersama dan mendengarkan musik."),
    "vi": ("vi", "Hôm nay thời tiết rất đẹp. Chúng tôi đi công viên với bạn bè."
           " Buổi tối chúng tôi nấu ăn cùng nhau và nghe nhạc."),
    "ca": ("ca", "Avui fa molt bon temps. Anem al parc amb els nostres amics."
           " Al vespre cuinem junts i escoltem música."),
    "hi": ("hi", "आज मौसम बहुत अच्छा है। हम अपने दोस्तों के साथ पार्क जा रहे हैं।"
           " शाम को हम साथ में खाना बनाते हैं और संगीत सुनते हैं।"),
    "zh": ("cmn", "今天天气很好。我们和朋友一起去公园。"
           "晚上我们一起做饭，听音乐。"),
    "ja": ("ja", "きょうは とても いい てんき です。ともだちと こうえんに いきます。"
           " よるは いっしょに りょうりを して おんがくを ききます。"),
}

#: Languages scored by characters because they are written without spaces.
CHARACTER_SCORED = frozenset({"zh", "ja", "th", "lo", "km", "my", "yue"})

_KATAKANA = range(0x30A1, 0x30F7)  # ァ … ヶ: the same syllables as ぁ … ゖ, 0x60 higher


def espeak_binary() -> str:
    """Path of espeak-ng or a :class:`TranscriptionError` saying how to install it."""
    found = shutil.which("espeak-ng")
    if not found:
        raise TranscriptionError("espeak-ng is not installed: apt-get install espeak-ng")
    return found


def synthesize(text: str, voice: str, path: str | Path, *, speed: int | None = None) -> Path:
    """Speak ``text`` with espeak-ng ``voice`` into a WAV file at ``path``."""
    command = [espeak_binary(), "-v", voice, "-w", str(path)]
    if speed:
        command += ["-s", str(speed)]
    subprocess.run([*command, text], check=True, capture_output=True)
    return Path(path)


def fold_kana(text: str) -> str:
    """Katakana written as hiragana (one syllabary, two scripts)."""
    return "".join(chr(ord(ch) - 0x60) if ord(ch) in _KATAKANA else ch for ch in text)


def tokens(text: str, language: str) -> list[str]:
    """Normalised tokens for scoring: lower case, no punctuation; characters for CJK.

    Japanese is compared as kana with katakana folded to hiragana: the
    reference is kana (espeak-ng cannot read kanji) and Whisper writes this
    speech in katakana.
    """
    text = unicodedata.normalize("NFKC", text.lower())
    if language == "ja":
        text = fold_kana(text)
    cleaned = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch
                      for ch in text)
    if language in CHARACTER_SCORED:
        return [ch for ch in cleaned if not ch.isspace()]
    return cleaned.split()


def error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Levenshtein distance between token lists divided by the reference length."""
    if not reference:
        return float(bool(hypothesis))
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1] / len(reference)


def word_error_rate(reference: str, hypothesis: str, language: str) -> float:
    """WER (CER for :data:`CHARACTER_SCORED` languages) of ``hypothesis``."""
    return error_rate(tokens(reference, language), tokens(hypothesis, language))


def character_error_rate(reference: str, hypothesis: str, language: str) -> float:
    """CER of ``hypothesis``: the normalised text's characters, spaces left out."""
    def characters(text: str) -> list[str]:
        return [ch for token in tokens(text, language) for ch in token]

    return error_rate(characters(reference), characters(hypothesis))


def foreign_letters(text: str, language: str) -> str:
    """The letters and digits of ``text`` not written in ``language``'s script.

    Digits count as foreign: none of the sample texts has one, and a decoder
    that loops on speech it cannot read often emits digits.
    """
    return foreign_characters(text, language, "LN")


@dataclass(frozen=True)
class Score:
    """One language's result."""

    language: str
    detected: str
    probability: float
    wer: float
    cer: float
    text: str = ""


def evaluate(transcriber, languages: list[str] | None = None) -> list[Score]:  # noqa: ANN001
    """Speak, transcribe and score each language of :data:`SAMPLES`."""
    scores = []
    with tempfile.TemporaryDirectory(prefix="daw-wer-") as tmp:
        for code in languages or list(SAMPLES):
            voice, text = SAMPLES[code]
            wav = synthesize(text, voice, Path(tmp) / f"{code}.wav")
            detected, probability = transcriber.detect_language(wav)
            forced = transcriber.transcribe(wav, language=code)
            scores.append(Score(code, detected, probability,
                                word_error_rate(text, forced.text, code),
                                character_error_rate(text, forced.text, code), forced.text))
    return scores


def markdown_table(scores: list[Score]) -> str:
    """The scores as a Markdown table."""
    lines = ["| language | detected (probability) | WER (language forced) | CER |",
             "|---|---|---|---|"]
    for s in scores:
        wer = "–" if s.language in CHARACTER_SCORED else f"{s.wer:.2f}"
        lines.append(f"| {s.language} | {s.detected} ({s.probability:.2f}) | {wer} | "
                     f"{s.cer:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the per-language table."""
    from .engine import Transcriber, use_reproducible_kernels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="faster-whisper model directory")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--temperatures", default="0,0.2,0.4,0.6,0.8,1",
                        help="comma-separated decoding temperatures (the tests use 0)")
    parser.add_argument("--show-text", action="store_true",
                        help="also print what was transcribed for each language")
    parser.add_argument("--cuts", action="store_true",
                        help="measure text-edit cut points on connected English speech instead")
    parser.add_argument("--native-kernels", action="store_true",
                        help="this CPU's own kernels, not the reproducible ones the tests use")
    parser.add_argument("languages", nargs="*")
    args = parser.parse_args(argv)
    if not args.native_kernels:
        use_reproducible_kernels()
    temperatures = tuple(float(t) for t in args.temperatures.split(","))
    transcriber = Transcriber(args.model, cpu_threads=args.threads, beam_size=args.beam_size,
                              temperatures=temperatures)
    if args.cuts:
        from .speech import cut_accuracy

        print(cut_accuracy(transcriber).summary())
        return
    scores = evaluate(transcriber, args.languages or None)
    print(markdown_table(scores))
    if args.show_text:
        for score in scores:
            print(f"{score.language}: {score.text!r}")


if __name__ == "__main__":
    main()
