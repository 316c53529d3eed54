"""The ``dawclient`` command: join a project from the desktop, play it locally, record takes.

``dawserver client`` is the same command (:mod:`dawserver.commands.client`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click


class CliError(click.ClickException):
    """One clear error line and exit status 1, never a traceback."""

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def _latency(text: str) -> str | float:
    if text in ("low", "high"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"--latency must be 'low', 'high' or seconds, got {text!r}") from None
    if not 0 < value <= 2:
        raise CliError(f"--latency {value} s is outside (0, 2]")
    return value


@click.command("client")
@click.argument("url", required=False)
@click.option("--project", "project_id", help="Project id.")
@click.option("--token", envvar="DAW_TOKEN", help="Project token (or $DAW_TOKEN).")
@click.option("--device", default=None, help="Output device (index or name; see "
              "--list-devices).")
@click.option("--input-device", default=None, help="Input device for --record.")
@click.option("--list-devices", is_flag=True, help="Print PortAudio's devices and exit.")
@click.option("--block-size", type=click.IntRange(16, 16384), default=1024, show_default=True,
              help="Frames rendered and written per block (1024 renders exactly like the "
                   "server).")
@click.option("--latency", default="high", show_default=True,
              help="PortAudio latency: low, high or seconds.")
@click.option("--record", is_flag=True, help="Capture takes from the input device while the "
              "transport records (into armed tracks).")
@click.option("--track", default=None, help="With --record: only this armed track.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Leave after playing this many seconds (default: until Ctrl-C).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write what is played to this float32 WAV file.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where downloaded project audio is kept "
              "(default ~/.cache/dawclient).")
@click.option("--controls", is_flag=True, help="Read fader moves from standard input, one per "
              "line: TRACK PARAM VALUE [hold|release] (while playing, lanes in touch, latch "
              "or write record them as automation); with --midi-in, also 'panic' (let every "
              "note go) and 'midi-in PORT' (switch the MIDI input).")
@click.option("--monitor", type=click.Choice(["mix", "binaural", "stereo"]), default="mix",
              show_default=True, help="Play the stereo mix, or the immersive mix binaurally "
              "for headphones or folded to stereo.")
@click.option("--backend", type=click.Choice(["native", "reference"]), default=None,
              help="Engine backend (default: native C engine when built).")
@click.option("--midi-in", default=None, help="Play and record from this MIDI input port "
              "(index or part of its name; see --list-midi) into the --track MIDI track "
              "(default: the first with an instrument); notes land where they were heard "
              "while the transport plays, no arming needed.")
@click.option("--midi-api", type=click.Choice(["alsa", "jack"]), default=None,
              help="RtMidi's MIDI system for --midi-in (default: RtMidi's choice).")
@click.option("--list-midi", is_flag=True, help="Print the MIDI input ports and exit.")
def client(url: str | None, project_id: str | None, token: str | None, device: str | None,
           input_device: str | None, list_devices: bool, block_size: int, latency: str,
           record: bool, track: str | None, seconds: float | None, save: Path | None,
           cache_dir: Path | None, backend: str | None, controls: bool,
           monitor: str = "mix", midi_in: str | None = None, midi_api: str | None = None,
           list_midi: bool = False) -> None:
    """Join the project at URL (http://HOST:PORT), render it locally and play it."""
    try:
        from .player import StreamSettings, parse_device
        from .player import list_devices as devices
        from .session import ClientError, ClientOptions, DesktopClient
        from .sources import SourceDownloadError
    except OSError as exc:  # sounddevice without libportaudio2
        raise CliError(f"audio is unavailable: {exc} (install libportaudio2)") from None
    if list_devices:
        try:
            click.echo(devices())
        except OSError as exc:
            raise CliError(f"cannot list audio devices: {exc}") from None
        return
    if list_midi:
        from .midi_input import MidiInputError, list_ports
        try:
            click.echo("\n".join(f"{i}: {name}" for i, name in
                                  enumerate(list_ports(midi_api))) or "no MIDI input ports")
        except MidiInputError as exc:
            raise CliError(str(exc)) from None
        return
    if not url or not project_id or not token:
        raise CliError("give the server URL, --project and --token (or --list-devices)")
    stream = StreamSettings(parse_device(device), parse_device(input_device), block_size,
                            _latency(latency), record, str(save) if save else None)
    options = ClientOptions(url, project_id, token, stream, track, seconds, backend=backend,
                            controls=controls, monitor=monitor, midi_in=midi_in,
                            midi_api=midi_api)
    if cache_dir is not None:
        options.cache_dir = cache_dir
    try:
        report = asyncio.run(DesktopClient(options).run())
    except (ClientError, SourceDownloadError) as exc:
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:
        return
    rate = report.sample_rate or 1
    click.echo(f"played {report.frames_played / rate:.2f} s in {report.blocks_written} blocks "
               f"({report.underflows} underflows); takes: {len(report.clips)} clip(s)"
               + (f" {', '.join(report.clips)}" if report.clips else ""))
    if midi_in is not None:
        waits = sorted(report.midi_latency)
        median = f"{1000 * waits[len(waits) // 2]:.1f} ms" if waits else "no notes"
        click.echo(f"MIDI: {report.midi_notes} note(s) recorded; note-on to first audible "
                   f"sample rendered: median {median}")
    if report.latency is not None:
        heard, played = report.latency
        click.echo(f"takes placed {round((heard + played) * rate)} frames early: input "
                   f"{1000 * heard:.1f} ms + output {1000 * played:.1f} ms, as PortAudio "
                   "reports them")


def main() -> None:
    """The ``dawclient`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    client(prog_name="dawclient")
