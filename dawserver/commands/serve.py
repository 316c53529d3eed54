"""``dawserver serve``: run the collaboration server (``--demo`` for a ready-made project)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import click
from aiohttp import web

from accounts.passwords import meets_owasp_minimum
from accounts.throttle import SIGN_UPS_FREE
from collab.errors import CollabError
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from database import DatabaseError
from dawserver.asset_store import AssetStore
from dawserver.cli import CliError
from dawserver.config import DEFAULT_PORT, EXPORT_KEEP_S, ServerConfig
from dawserver.projects import import_project_file
from dsp_core.errors import DspError

from ._server_options import configured_regions, data_options, region_options

log = logging.getLogger(__name__)
DEMO_MARKER = "demo-project.json"


async def _ensure_demo(config: ServerConfig) -> str:
    """Create (once) and import the 256-track demo project; return its id."""
    marker = config.data_dir / DEMO_MARKER
    async with open_store(config.database_url, config.data_dir) as store:
        if marker.exists():
            project_id = json.loads(marker.read_text())["id"]
            if await store.get_project(project_id) is not None:
                return project_id
        from dsp_core.demo import write_demo_project

        click.echo("creating the 256-track demo project (once; takes a little while)...")
        path = await asyncio.get_running_loop().run_in_executor(
            None, lambda: write_demo_project(config.data_dir / "demo", tracks=256))
        # its audio becomes the project's assets: the server plays nothing else
        assets = AssetStore(config.data_dir / "assets")
        info = await import_project_file(store, path, name="Demo session", assets=assets)
    marker.write_text(json.dumps({"id": info.project_id}))
    return info.project_id


def _providers(path: Path | None) -> dict[str, dict[str, str]]:
    """The sign-in providers of a JSON file (``{name: {client_id, client_secret, ...}}``)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}",
                                 param_hint="--sign-in-providers") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise click.BadParameter(f'{path} must hold {{"NAME": {{"client_id": ..., '
                                 f'"client_secret": ...}}, ...}}',
                                 param_hint="--sign-in-providers")
    return data


def _hashing(text: str | None) -> tuple[int, int, int] | None:
    """``(time_cost, memory_KiB, parallelism)`` from ``"T,M,P"``."""
    if text is None:
        return None
    try:
        t, m, p = (int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"give three whole numbers T,M,P such as 3,65536,4, not "
                                 f"{text!r}", param_hint="--password-hashing") from None
    if t < 1 or p < 1 or m < 8 * p:
        raise click.BadParameter(f"argon2 needs T >= 1, P >= 1 and M >= 8*P KiB, not {text!r}",
                                 param_hint="--password-hashing")
    if not meets_owasp_minimum(t, m):
        click.echo(f"warning: --password-hashing {text} is below the OWASP minimum for "
                   "argon2id (e.g. 2 passes over 19 MiB, or 1 over 46 MiB): new passwords "
                   "are cheap to guess if the database leaks; use it for tests only",
                   err=True)
    return t, m, p


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@data_options
@region_options
@click.option("--demo", is_flag=True, help="Create/import a 256-track demo project and print "
              "its id, an owner token and the browser URL.")
@click.option("--max-documents", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--idle-unload", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds a document stays in memory after its last client leaves.")
@click.option("--max-message-bytes", type=click.IntRange(min=1024), default=16 * 1024 * 1024,
              show_default=True)
@click.option("--public-url", default=None, help="Base URL to print (behind a proxy).")
@click.option("--redis", "redis_url", metavar="URL", envvar="DAW_REDIS_URL", default=None,
              help="redis://HOST:PORT/DB, or redis+cluster://HOST:PORT,HOST:PORT for a Redis "
              "Cluster: serve the same projects as other processes on the same PostgreSQL "
              "--database (docs/scale-out.md).")
@click.option("--mail", "mail_url", metavar="URL", envvar="DAW_MAIL_URL", default=None,
              help="smtp://USER:PASS@HOST:PORT?from=...&starttls=1 (or smtps://) for account "
              "mail; default: written to DATA/outbox/*.eml.")
@click.option("--sign-in-providers", "providers_file", envvar="DAW_SIGN_IN_PROVIDERS",
              type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help='A JSON file of OpenID Connect providers: {"google": {"client_id": ..., '
              '"client_secret": ...}} (docs/accounts.md).')
@click.option("--password-hashing", metavar="T,M,P", envvar="DAW_PASSWORD_HASHING",
              default=None, help="argon2id time cost, memory (KiB) and lanes of new password "
              "hashes; default: RFC 9106 low-memory (3,65536,4).")
@click.option("--collab-token-lifetime", "collab_token_seconds", metavar="SECONDS",
              envvar="DAW_COLLAB_TOKEN_SECONDS", type=click.FloatRange(min=1), default=3600.0,
              show_default=True, help="Lifetime of the collaboration tokens the page derives "
              "from a session (it renews them before they run out).")
@click.option("--export-keep-days", "export_keep_days", metavar="DAYS",
              envvar="DAW_EXPORT_KEEP_DAYS", type=click.FloatRange(min=0, min_open=True,
                                                                  max=30),
              default=EXPORT_KEEP_S / 86_400, show_default=True, help="How long a person's "
              "privacy export archive stays downloadable after it is made (docs/accounts.md).")
@click.option("--sign-ups-per-client", "sign_ups_per_client", metavar="N",
              envvar="DAW_SIGN_UPS_PER_CLIENT", type=click.IntRange(min=1),
              default=SIGN_UPS_FREE, show_default=True, help="Sign-ups one "
              "client address makes freely before it waits 1 s, 2 s, ... (429), the count "
              "halving with each hour without one (docs/accounts.md).")
@click.option("--otlp-endpoint", metavar="URL", envvar="OTEL_EXPORTER_OTLP_ENDPOINT",
              default=None, help="Send trace spans to this OpenTelemetry collector over "
              "OTLP/HTTP (base URL, e.g. http://127.0.0.1:4318); default: no tracing.")
@click.option("--trace-console", is_flag=True, envvar="DAW_TRACE_CONSOLE",
              help="Print trace spans on standard output (for a look without a collector).")
@click.option("--storage", "storage_url", metavar="s3://BUCKET/PREFIX", envvar="DAW_STORAGE_URL",
              default=None, help="Keep assets, bounces and exports on the S3 API; default: "
              "local disk under --data. Endpoint and credentials: DAW_S3_ENDPOINT, "
              "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (docs/storage.md).")
@click.option("--trusted-proxy", "trusted_proxies", metavar="ADDRESS[/BITS]", multiple=True,
              envvar="DAW_TRUSTED_PROXIES", help="A reverse proxy in front of this server "
              "(repeatable; the environment variable takes several, space-separated): its "
              "requests count as from the client its X-Forwarded-For names, for per-address "
              "limits and audit records (docs/scale-out.md).")
def serve(host: str, port: int, data_dir: Path, database_url: str | None, demo: bool,
          max_documents: int, idle_unload: float, max_message_bytes: int,
          public_url: str | None, redis_url: str | None, mail_url: str | None,
          providers_file: Path | None, password_hashing: str | None,
          collab_token_seconds: float, export_keep_days: float, sign_ups_per_client: int,
          otlp_endpoint: str | None,
          trace_console: bool,
          storage_url: str | None, trusted_proxies: tuple[str, ...]) -> None:
    """Serve the y-websocket endpoint ws://HOST:PORT/collab/PROJECT and the HTTP API."""
    from dawserver.app import create_app
    from dawserver.gc_freeze import freeze_after_startup
    from dawserver.tracing import TracingError, configure_tracing

    try:
        tracer_provider = configure_tracing(otlp_endpoint or None, console=trace_console)
    except TracingError as exc:
        raise CliError(str(exc)) from exc

    try:
        config = ServerConfig(
            host=host, port=port, data_dir=data_dir, database_url=database_url,
            max_documents=max_documents, idle_unload_seconds=idle_unload,
            max_message_bytes=max_message_bytes, public_url=public_url, redis_url=redis_url,
            regions=configured_regions(), mail_url=mail_url,
            sign_in_providers=_providers(providers_file),
            password_hashing=_hashing(password_hashing),
            collab_token_seconds=collab_token_seconds, storage_url=storage_url,
            export_keep_seconds=export_keep_days * 86_400,
            sign_ups_per_client=sign_ups_per_client, trusted_proxies=tuple(trusted_proxies))
    except (ValueError, DatabaseError) as exc:
        raise CliError(str(exc)) from exc
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if demo:
            project_id = asyncio.run(_ensure_demo(config))
            owner = TokenSigner.from_data_dir(data_dir).issue(project_id, Role.OWNER, "owner")
            click.echo(f"demo project: {project_id}")
            click.echo(f"owner token:  {owner}")
            click.echo(f"browser:      {config.base_url}/?project={project_id}&token={owner}")
            click.echo(f"y-websocket:  {config.collab_url}  (room {project_id})")
        app = create_app(config)
        app.on_startup.append(freeze_after_startup)
    except (CollabError, DatabaseError, DspError, OSError) as exc:
        raise CliError(str(exc)) from exc
    click.echo(f"serving on {config.base_url} (data in {data_dir})", err=True)
    try:
        web.run_app(app, host=host, port=port, print=None, handle_signals=True)
    except (CollabError, DatabaseError) as exc:  # the database, store or Redis, opened at start
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()  # export the spans still buffered
