"""Test helpers: hand-made Yjs v1 updates, valid and not, for the integrity tests.

An encoder of the update layout (lib0 varints and strings) that writes what a
test asks for, including what no yjs encoder would write: unknown content and
type references, parents that are not shared types, truncated or padded bytes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from pycrdt import Doc

from collab.protocol import read_state_vector, write_var_uint
from collab.schema import ProjectDocument
from dsp_core.session import Clip, Track

#: The three updates of issue 10, as an editor sent them.
BAD_PARENT = bytes.fromhex(
    "0102b2f219002801076d61726b6572730178017701612800b2f219000179017704626f6f6d00")
TYPE_REF_9 = bytes.fromhex(
    "0104e13c002701076d61726b657273026d78092800e13c000269640177026d782800e13c00046e616d65"
    "01770568656c6c6f2800e13c0008706f736974696f6e017c40a0000000")


#: Client id of :func:`fixed_project`'s items, so fuzzed ids point at them in every run.
SEED_CLIENT = 4242


def fixed_project(tracks: int = 4) -> ProjectDocument:
    """A small project written by client :data:`SEED_CLIENT` (the same bytes every run)."""
    project = ProjectDocument(Doc(client_id=SEED_CLIENT))
    with project.transaction():
        for i in range(tracks):
            project.add_track(Track(f"t{i}", f"Track {i}"), order=i)
            project.add_clip(f"t{i}", Clip("/x.wav", 0, 100, id=f"c{i}"))
    return project


def item_ids(project: ProjectDocument, step: int = 3) -> list[tuple[int, int]]:
    """Every ``step``-th item id of ``project``: shared types and plain values alike."""
    state = read_state_vector(project.doc.get_state())
    return [(client, clock) for client, end in state.items() for clock in range(0, end, step)]


def plain_value_parent(project: ProjectDocument, client: int = 5150) -> bytes:
    """An update whose second item sits in a plain value of ``project``, not a shared type.

    Yrs applies the first item (``markers["x"] = "a"``), then fails on the second.
    """
    from collab.update_format import read_update

    types = read_update(project.doc.get_update()).types
    plain = next(item for item in item_ids(project, 1) if item not in types)
    return UpdateBuilder([(client, 0, [
        Item(8, any_string("a"), parent_key="markers", parent_sub="x"),
        Item(8, any_string("boom"), parent_id=plain, parent_sub="y"),
    ])]).encode()


def var_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return write_var_uint(len(raw)) + raw


@dataclass
class Item:
    """One item struct: where it goes and what it holds (``content`` is encoded already)."""

    info: int
    content: bytes
    length: int = 1
    origin: tuple[int, int] | None = None
    right_origin: tuple[int, int] | None = None
    parent_key: str | None = None
    parent_id: tuple[int, int] | None = None
    parent_sub: str | None = None

    def encode(self) -> bytes:
        info = self.info & 0x1F
        out = bytearray()
        if self.origin is not None:
            info |= 0x80
            out += write_var_uint(self.origin[0]) + write_var_uint(self.origin[1])
        if self.right_origin is not None:
            info |= 0x40
            out += write_var_uint(self.right_origin[0]) + write_var_uint(self.right_origin[1])
        if self.origin is None and self.right_origin is None:
            if self.parent_key is not None:
                out += write_var_uint(1) + var_string(self.parent_key)
            else:
                parent = self.parent_id or (0, 0)
                out += write_var_uint(0) + write_var_uint(parent[0]) + write_var_uint(parent[1])
            if self.parent_sub is not None:
                info |= 0x20
                out += var_string(self.parent_sub)
        return bytes([info]) + bytes(out) + self.content


@dataclass
class UpdateBuilder:
    """Struct groups per client, then a delete set."""

    groups: list[tuple[int, int, list[Item]]] = field(default_factory=list)
    deletes: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)

    def encode(self) -> bytes:
        out = bytearray(write_var_uint(len(self.groups)))
        for client, clock, items in self.groups:
            out += write_var_uint(len(items)) + write_var_uint(client) + write_var_uint(clock)
            for item in items:
                out += item.encode()
        out += write_var_uint(len(self.deletes))
        for client, ranges in self.deletes:
            out += write_var_uint(client) + write_var_uint(len(ranges))
            for clock, length in ranges:
                out += write_var_uint(clock) + write_var_uint(length)
        return bytes(out)


def any_string(text: str) -> bytes:
    """ContentAny holding one string."""
    return write_var_uint(1) + bytes([119]) + var_string(text)


def content_type(ref: int) -> bytes:
    """ContentType of type reference ``ref`` (named kinds get a name)."""
    return write_var_uint(ref) + (var_string("node") if ref in (3, 5) else b"")


class Fuzzer:
    """Random updates, from plain noise to well-formed updates with one thing wrong.

    ``known`` lists ids of items in the target document: the fuzzer points parents
    and origins at them, so updates reach yrs' integration step, not just its decoder.
    """

    def __init__(self, seed: int, known: list[tuple[int, int]], real: list[bytes]) -> None:
        self.rng = random.Random(seed)
        self.known = known
        self.real = real
        self.clients = [self.rng.randrange(1, 2**32) for _ in range(6)]
        self.clocks = dict.fromkeys(self.clients, 0)

    def update(self) -> bytes:
        kind = self.rng.random()
        if kind < 0.15:
            return self.noise()
        if kind < 0.4:
            return self.mutated()
        return self.structured()

    def noise(self) -> bytes:
        return self.rng.randbytes(self.rng.randrange(1, 64))

    def mutated(self) -> bytes:
        data = bytearray(self.rng.choice(self.real))
        for _ in range(self.rng.randrange(1, 4)):
            where = self.rng.randrange(len(data))
            action = self.rng.randrange(4)
            if action == 0:
                data[where] ^= 1 << self.rng.randrange(8)
            elif action == 1:
                data[where] = self.rng.randrange(256)
            elif action == 2:
                del data[where:where + self.rng.randrange(1, 4)]
            else:
                data.insert(where, self.rng.randrange(256))
            if not data:
                data = bytearray(b"\x00")
        return bytes(data)

    def structured(self) -> bytes:
        """Mostly a new client from clock 0; otherwise one of a few clients carrying on
        (whose earlier updates the server may have refused: those skip clocks)."""
        if self.rng.random() < 0.7:
            client = self.rng.randrange(1, 2**32)
            self.clocks[client] = 0
        else:
            client = self.rng.choice(self.clients)
        clock = self.clocks[client]
        items = [self.item() for _ in range(self.rng.randrange(1, 4))]
        self.clocks[client] = clock + sum(item.length for item in items)
        builder = UpdateBuilder([(client, clock, items)])
        if self.rng.random() < 0.2:
            target = self.rng.choice(self.known)
            builder.deletes.append((target[0], [(target[1], self.rng.randrange(1, 3))]))
        return builder.encode()

    def item(self) -> Item:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            content, info, length = any_string(rng.choice(["a", "boom", "x" * 20])), 8, 1
        elif roll < 0.7:
            ref = rng.choice([0, 1, 2, 6, 7, 9, 15])
            content, info, length = content_type(ref), 7, 1
        elif roll < 0.8:
            text = rng.choice(["hi", "héllo", "🎵"])
            content = var_string(text)
            info, length = 4, len(text.encode("utf-16-le")) // 2
        elif roll < 0.88:
            values = [json.dumps(rng.choice([1, "s", None, [1, 2]])), "undefined"]
            content = write_var_uint(2) + b"".join(var_string(v) for v in values)
            info, length = 2, 2
        else:
            info = rng.choice([11, 17, 24, 31, 3, 5, 6])
            content, length = var_string("?") + var_string("{}"), 1
        item = Item(info, content, length)
        where = rng.random()
        if where < 0.35:
            item.parent_id = rng.choice(self.known)
            item.parent_sub = rng.choice([None, "gain_db", "y"])
        elif where < 0.6:
            item.parent_key = rng.choice(["tracks", "markers", "clips", "meta"])
            item.parent_sub = rng.choice([None, f"k{rng.randrange(99)}"])
        else:
            item.origin = rng.choice(self.known)
            if rng.random() < 0.3:
                item.right_origin = rng.choice(self.known)
        return item
