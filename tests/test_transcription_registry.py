"""The model registry: versions by file hash, the inference log, the re-measured error table.

Registration needs only a model directory's files (it never loads the model), so those
tests use small directories laid out like a faster-whisper model; the inference log and
the ``measure`` command run the real base model (``whisper_model_dir``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner

from database import open_database
from dawserver.cli import main
from jobs import JobContext, JobQueue, JobWorker
from transcription.engine import Transcriber
from transcription.errors import LanguageError, ModelError
from transcription.evaluation import SAMPLES, synthesize
from transcription.jobs import (
    DONE,
    QUEUE,
    Job,
    TranscriberPool,
    TranscriptionRequest,
    migrate,
    queue_settings,
    transcribe,
)
from transcription.languages import LANGUAGES
from transcription.registry import ModelRegistry, model_sha256

T = TypeVar("T")


def model_dir(root: Path, weights: bytes, *, languages: int = 99) -> Path:
    """A directory with a faster-whisper model's files (``weights`` as model.bin)."""
    root.mkdir(parents=True)
    (root / "model.bin").write_bytes(weights)
    (root / "config.json").write_text(json.dumps({"lang_ids": list(range(languages))}))
    (root / "tokenizer.json").write_text("{}")
    (root / "vocabulary.txt").write_text("a\n")
    return root


def with_registry(url: str, work: Callable[[ModelRegistry], Awaitable[T]]) -> T:
    async def scenario() -> T:
        async with open_database(url) as db:
            await migrate(db)
            return await work(ModelRegistry(db))

    return asyncio.run(scenario())


def sqlite(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'registry.sqlite3'}"


def test_a_changed_model_file_is_a_new_version_with_who_and_when(tmp_path: Path) -> None:
    first = model_dir(tmp_path / "a", b"weights one")
    before = time.time()

    async def work(registry: ModelRegistry) -> Any:
        v1, created1 = await registry.register("whisper-x", first, registered_by="ana")
        again, created2 = await registry.register("whisper-x", first, registered_by="ben")
        (first / "model.bin").write_bytes(b"weights two")  # retrained in place
        v2, created3 = await registry.register("whisper-x", first, registered_by="ben")
        return v1, created1, again, created2, v2, created3, await registry.history(
            "whisper-x"), await registry.latest()

    v1, created1, again, created2, v2, created3, history, latest = with_registry(
        sqlite(tmp_path), work)
    assert (v1.version, created1, v1.registered_by) == (1, True, "ana")
    assert v1.sha256 == hashlib.sha256(b"weights one").hexdigest()
    assert (again, created2) == (v1, False)  # same file: no new version, first registrant
    assert (v2.version, created3, v2.registered_by) == (2, True, "ben")
    assert v2.sha256 != v1.sha256 and before <= v1.registered_at <= v2.registered_at
    assert history == [v1, v2] and latest == [v2]


def test_languages_default_to_what_the_model_knows_and_are_checked(tmp_path: Path) -> None:
    multi = model_dir(tmp_path / "multi", b"m")
    english = model_dir(tmp_path / "en", b"e", languages=1)

    async def work(registry: ModelRegistry) -> Any:
        a, _ = await registry.register("multi", multi, registered_by="t")
        b, _ = await registry.register("english", english, registered_by="t")
        c, _ = await registry.register("picked", multi, registered_by="t",
                                       languages=["German", "en", "de"])
        with pytest.raises(LanguageError, match="klingon"):
            await registry.register("bad", multi, registered_by="t", languages=["klingon"])
        with pytest.raises(ModelError, match="no model named 'nothing'"):
            await registry.history("nothing")
        return a, b, c

    a, b, c = with_registry(sqlite(tmp_path), work)
    assert a.languages == tuple(LANGUAGES) and b.languages == ("en",)
    assert c.languages == ("de", "en")


def test_a_directory_that_is_no_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    async def work(registry: ModelRegistry) -> None:
        await registry.register("x", tmp_path / "empty", registered_by="t")

    with pytest.raises(ModelError, match="missing model.bin"):
        with_registry(sqlite(tmp_path), work)


def test_every_job_decode_is_logged_against_the_model_version(
        tmp_path: Path, transcriber: Transcriber, whisper_model_dir: Path) -> None:
    voice, text = SAMPLES["en"]
    speech = synthesize(text, voice, tmp_path / "en.wav")

    async def scenario() -> Any:
        async with open_database(sqlite(tmp_path)) as db:
            await migrate(db)
            registry = ModelRegistry(db)
            queue = JobQueue(db, {QUEUE: queue_settings(1)})
            pool = TranscriberPool(lambda: transcriber, 1)

            async def handler(ctx: JobContext) -> dict:
                return (await transcribe(ctx, pool, registry=registry)).to_dict()

            async with JobWorker(queue, {QUEUE: handler}, poll_s=0.2):
                ids = []
                for account in ("acct-a", "acct-b"):
                    request = TranscriptionRequest(project_id=account, source=str(speech),
                                                   language="en")
                    ids.append((account, (await queue.enqueue(
                        QUEUE, request.to_payload(), account_id=account)).id))
                async with asyncio.timeout(120):
                    for account, job_id in ids:
                        while (job := Job.from_record(await queue.get(account, job_id))
                               ).status != DONE:
                            await asyncio.sleep(0.05)
            return (await registry.inferences("acct-a"), await registry.inferences("acct-b"),
                    await registry.latest(), job)

    logged_a, logged_b, latest, job = asyncio.run(scenario())
    assert len(logged_a) == len(logged_b) == 1  # each account sees only its own decodes
    entry = logged_a[0]
    assert latest[0].name == "whisper-base" and latest[0].registered_by == "server"
    assert latest[0].sha256 == model_sha256(whisper_model_dir)
    assert (entry.model_name, entry.model_version, entry.language) == ("whisper-base", 1, "en")
    assert entry.duration_s == pytest.approx(job.transcript.duration)
    words = [w.probability for s in job.transcript.segments for w in s.words]
    # the stored result rounds probabilities; the log keeps the decode's own
    assert entry.confidence == pytest.approx(sum(words) / len(words), abs=1e-3)
    assert 0.5 < entry.confidence <= 1.0


def test_cli_registers_lists_and_remeasures_against_the_version(
        tmp_path: Path, whisper_model_dir: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "data")]
    copy = tmp_path / "models" / "whisper-base"
    shutil.copytree(whisper_model_dir, copy)
    registered = runner.invoke(main, ["models", "register", "base", str(copy), "--by", "ana",
                                      *data])
    assert registered.exit_code == 0, registered.output
    assert registered.output.startswith("registered\tbase\tv1\t")
    measured = runner.invoke(main, ["models", "measure", "--model", str(copy), "--name", "base",
                                    "--threads", "2", "--by", "ben", "en", *data])
    assert measured.exit_code == 0, measured.output
    assert measured.output.startswith("base v1 ") and "| en | en (" in measured.output
    with (copy / "model.bin").open("ab") as handle:  # the file changes: a new version
        handle.write(b"\0")
    assert runner.invoke(main, ["models", "register", "base", str(copy), *data]
                         ).output.startswith("registered\tbase\tv2\t")
    listed = runner.invoke(main, ["models", "list", *data])
    assert listed.exit_code == 0 and listed.output.count("\n") == 1
    assert listed.output.startswith("base\tv2\t")
    lines = runner.invoke(main, ["models", "history", "base", *data]).output.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["v1", "v2"]
    assert lines[0].split("\t")[4] == "ana" and lines[0].endswith("measured: 1 languages")
    assert lines[1].endswith("measured: 0 languages")

    async def scores(registry: ModelRegistry) -> Any:
        return await registry.scores((await registry.history("base"))[0])

    async def stored_scores() -> Any:
        async with open_database(None, tmp_path / "data") as db:  # the server's database
            registry = ModelRegistry(db)
            return await registry.scores((await registry.history("base"))[0])

    stored = asyncio.run(stored_scores())
    assert [s.language for s in stored] == ["en"] and stored[0].wer < 0.1
    missing = runner.invoke(main, ["models", "history", "nothing", *data])
    assert missing.exit_code == 1 and "no model named 'nothing'" in missing.output
    bad = runner.invoke(main, ["models", "measure", "--model", str(copy), "xx", *data])
    assert bad.exit_code == 1 and "no sample speech for xx" in bad.output


@pytest.mark.asyncio
async def test_only_administrators_list_models_over_http(tmp_path: Path) -> None:
    import aiohttp
    from loopback import free_port
    from nodepeer import running_server

    from dawserver.config import ServerConfig
    from dawserver.keys import DATABASE, TOKENS
    from transcription.evaluation import Score

    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    weights = model_dir(tmp_path / "m", b"weights")
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        registry = ModelRegistry(app[DATABASE])
        v1, _ = await registry.register("base", weights, registered_by="ana")
        (weights / "model.bin").write_bytes(b"weights, retrained")
        v2, _ = await registry.register("base", weights, registered_by="ben")
        await registry.store_scores(v2, [Score("de", "de", 0.7, 0.25, 0.1)], measured_by="ben")

        async def get(token: str) -> tuple[int, Any]:
            async with http.get(f"{config.base_url}/models",
                                headers={"Authorization": f"Bearer {token}"}) as answer:
                return answer.status, await answer.json()

        status, listed = await get(app[TOKENS].issue("*", "owner", "root"))
        refused, _ = await get(app[TOKENS].issue("some-project", "owner", "olga"))
    assert status == 200 and [(m["name"], m["version"]) for m in listed] == [("base", 2)]
    assert listed[0]["sha256"] == v2.sha256 != v1.sha256
    assert listed[0]["registered_by"] == "ben"
    assert listed[0]["scores"] == [{"language": "de", "detected": "de", "probability": 0.7,
                                    "wer": 0.25, "cer": 0.1}]
    assert refused == 403
