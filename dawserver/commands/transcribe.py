"""``dawserver transcribe``: speech to text with word times, offline."""

from __future__ import annotations

from pathlib import Path

import click

from dawserver.cli import CliError


def _list_languages() -> None:
    from transcription.languages import LANGUAGES

    for code, name in LANGUAGES.items():
        click.echo(f"{code}\t{name}")


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-l", "--language", default=None,
              help="Language code (e.g. en, de); default: detect.")
@click.option("-f", "--format", "fmt", default="json", show_default=True,
              type=click.Choice(["json", "srt", "vtt", "txt"]), help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of stdout.")
@click.option("--model", "model_dir", default=None,
              help="faster-whisper model directory (default: $DAW_WHISPER_MODEL or the "
                   "installed base model).")
@click.option("--threads", default=0, show_default=True, help="CPU threads (0: all).")
@click.option("--beam-size", default=5, show_default=True, help="Decoder beam width.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--list-languages", is_flag=True, help="List language codes and exit.")
def transcribe(file: Path | None, language: str | None, fmt: str, output: Path | None,
               model_dir: str | None, threads: int, beam_size: int, no_progress: bool,
               list_languages: bool) -> None:
    """Transcribe an audio FILE (any format FFmpeg reads) to JSON, SRT, VTT or text."""
    if list_languages:
        _list_languages()
        return
    if file is None:
        raise CliError("missing FILE: give an audio file to transcribe (or --list-languages)")
    if not file.is_file():
        raise CliError(f"audio file {str(file)!r} does not exist")
    from tqdm import tqdm

    from transcription.engine import Transcriber
    from transcription.errors import TranscriptionError
    from transcription.formats import export
    from transcription.languages import normalize_language

    try:
        code = normalize_language(language)
        transcriber = Transcriber(model_dir, cpu_threads=threads, beam_size=beam_size)
        with tqdm(total=100, unit="%", desc=file.name, disable=no_progress,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}") as bar:

            def progress(fraction: float) -> None:
                bar.update(round(fraction * 100) - bar.n)

            result = transcriber.transcribe(file, language=code, progress=progress)
        text = export(result, fmt)
    except TranscriptionError as exc:
        raise CliError(str(exc)) from exc
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {str(output)!r}: {exc.strerror}") from exc
