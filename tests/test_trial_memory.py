"""The trial copy's index stays small under steady editing (issue 19's soak finding).

The index must know every map entry ever written (an item placed after one is
checked against it), yet a fader moved thousands of times must not make it hold
thousands of ids: it keeps them as clock ranges, and one editor's moves take
consecutive clocks.  These tests count what it keeps, never time anything.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from pycrdt import Doc
from room_helpers import Client, project_room, wait_for
from yjs_updates import Item, UpdateBuilder, any_string, fixed_project, plain_value_parent

from collab import protocol as p
from collab.schema import ProjectDocument
from collab.store import open_store
from collab.trial import TrialDoc, apply_update
from collab.type_index import IdSet, TypeIndex
from collab.update_format import MalformedUpdate, read_update

MOVES = 4000
COMMENT_EVERY = 15  # as scripts/soak.py: a comment every 3 s at 5 moves a second


def writers(source: Doc, count: int) -> list[ProjectDocument]:
    """``count`` editors' documents, each a copy of ``source`` with its own client id."""
    out = []
    for i in range(count):
        doc = Doc(client_id=7000 + i)
        doc.apply_update(source.get_update())
        out.append(ProjectDocument(doc))
    return out


def change(document: ProjectDocument, edit) -> bytes:  # noqa: ANN001 - a callable
    before = document.doc.get_state()
    edit(document)
    return document.doc.get_update(before)


def test_an_id_set_holds_exactly_the_ids_added_in_few_ranges() -> None:
    ids, held = IdSet(), set()
    for client, clock in [(1, 5), (1, 7), (1, 6), (2, 0), (1, 3), (1, 4), (1, 4), (2, 2),
                          (1, 9), (1, 8)]:
        ids.add(client, clock)
        held.add((client, clock))
    assert len(ids) == len(held) == 9
    assert all(((c, k) in ids) == ((c, k) in held) for c in (0, 1, 2) for k in range(12))
    assert ids.ranges == 3  # 1: 3..9, 2: 0 and 2
    for clock in range(10, 10_010):
        ids.add(1, clock)
    assert ids.ranges == 3 and (1, 10_009) in ids and (1, 10_010) not in ids


def test_thousands_of_fader_moves_and_comments_keep_the_index_small() -> None:
    project = fixed_project()
    trial = TrialDoc(project.doc)
    editors = writers(project.doc, 4)
    comments = 0
    for k in range(MOVES):
        editor = editors[k % 4]
        updates = [change(editor, lambda d, k=k: d.set_track_gain(f"t{k % 4}", -k / 100))]
        if k % COMMENT_EVERY == 0:
            updates.append(change(editor, lambda d, k=k: d.add_comment("e", f"note {k}")))
            comments += 1
        for update in updates:
            trial.attempt(update, read_update(update))
            apply_update(project.doc, update)
            for other in editors:
                if other is not editor:
                    other.doc.apply_update(update)
    index = trial._index
    assert index is not None
    assert len(index.entries) > MOVES  # every entry is known ...
    # ... in a few ranges: one per comment (its map is a type) and per client.
    assert trial.index_size < 3 * comments + 50
    # No bigger than an index read afresh from the document's encoding (where yrs
    # merged each run of overwritten values into one deleted item).
    assert trial.index_size <= TypeIndex.of(project.doc.get_update()).size


def test_after_thousands_of_moves_the_copy_still_refuses_what_yrs_would_half_apply() -> None:
    project = fixed_project()
    trial = TrialDoc(project.doc)
    (editor,) = writers(project.doc, 1)
    for k in range(MOVES):
        update = change(editor, lambda d, k=k: d.set_track_gain("t0", -k / 100))
        trial.attempt(update, read_update(update))
        apply_update(project.doc, update)
    bad = plain_value_parent(project)
    with pytest.raises(MalformedUpdate, match="is not a shared type"):
        trial.attempt(bad, read_update(bad))
    # Text placed after the fader's current value (a map entry) replaces it with a run:
    # refused, as before the moves.
    state = p.read_state_vector(editor.doc.get_state())
    last = (editor.doc.client_id, state[editor.doc.client_id] - 1)
    replaces = UpdateBuilder([(5151, 0, [Item(4, b"\x03abc", origin=last)])]).encode()
    with pytest.raises(MalformedUpdate, match="replaces map entry"):
        trial.attempt(replaces, read_update(replaces))
    good = change(editor, lambda d: d.add_comment("e", "still editable"))
    trial.attempt(good, read_update(good))


@pytest.mark.asyncio
async def test_a_room_edited_thousands_of_times_refuses_with_4400_and_takes_good_edits(
        tmp_path: Path) -> None:
    project = fixed_project()
    async with open_store(None, tmp_path) as store:
        await store.create_project("song", "Song", project.doc.get_update())
        async with project_room("song", store) as room:
            ana, ben = Client(room, user="ana"), Client(room, user="ben")
            await ana.sync()
            await ben.sync()
            for k in range(MOVES // 2):
                ana.edit(lambda d, k=k: d.set_track_gain("t1", -k / 100))
                if k % COMMENT_EVERY == 0:
                    ana.edit(lambda d, k=k: d.add_comment("ana", f"note {k}"))
            await wait_for(lambda: (ben.apply_received()
                                    or ben.doc.track("t1")["gain_db"] == -(MOVES // 2 - 1) / 100),
                           timeout=120)
            assert 0 < room._trial.index_size < 3 * (MOVES // 2 // COMMENT_EVERY) + 50

            mallory = Client(room, user="mallory")
            mallory.send(p.sync_update(plain_value_parent(project)))
            await wait_for(lambda: mallory.channel.closed)
            assert mallory.channel.closed[0] == p.CloseCode.MALFORMED_MESSAGE
            await mallory.leave()

            ana.edit(lambda d: d.add_comment("ana", "after the refusal"))
            await wait_for(lambda: ben.apply_received() or any(
                c["text"] == "after the refusal" for c in ben.doc.comments()))
            assert not room.diverged
            await ana.leave()
            await ben.leave()


def test_the_replacing_run_is_what_yjs_would_refuse_too() -> None:
    """The refused run above is refused for its content, not its origin: one value
    placed after the same entry is taken."""
    project = fixed_project()
    (editor,) = writers(project.doc, 1)
    update = change(editor, lambda d: d.set_track_gain("t0", -1.0))
    apply_update(project.doc, update)
    trial = TrialDoc(project.doc)
    state = p.read_state_vector(editor.doc.get_state())
    last = (editor.doc.client_id, state[editor.doc.client_id] - 1)
    one_value = UpdateBuilder([(5151, 0, [Item(8, any_string("x"), origin=last)])]).encode()
    trial.attempt(one_value, read_update(one_value))


def test_a_document_loaded_and_read_as_a_session_is_freed() -> None:
    """Each bounce loads the project into a fresh document and reads its session; the
    views' cache observers once kept every such document alive (a cycle through yrs)."""
    encoded = fixed_project().doc.get_update()
    refs = []
    for _ in range(3):
        doc = Doc()
        doc.apply_update(encoded)
        document = ProjectDocument(doc)
        assert document.to_session().tracks  # watches clips and MIDI clips for its caches
        refs.append((weakref.ref(document), weakref.ref(doc)))
    del doc, document
    gc.collect()
    assert [(view(), doc()) for view, doc in refs] == [(None, None)] * 3


def test_the_caches_still_follow_changes_while_the_document_lives() -> None:
    project = fixed_project()
    assert project.clip_sources() == {"/x.wav"}
    project.update_clip("c0", source="/y.wav")
    assert project.clip_sources() == {"/x.wav", "/y.wav"}
