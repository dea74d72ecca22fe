"""What an apply writes where: a batch planned into script calls, and their replies read back.

Pure (no Redis, no asyncio; house style, habit 13): the Redis store only runs what is planned
here. A plan says, for one batch, which shard each event goes to (`keys.shard_of`), how a
shard's events are cut into calls of at most MAX_EVENTS_PER_SCRIPT, which event-time bucket each
event adds to (`redis_series.bucket_marks`), the keys every `apply.lua` call declares in their
order and its arguments, and which batch positions its result codes belong to.

With one shard a plan has one stage: every key shares the global hash tag, so `apply.lua` checks
the type cap itself. With K shards it has two (decision 0005): first `register.lua` on the global
slot admits the batch's types under the cap and names the reset generation (a `Registration`);
from its answer (an `Admission`) the shard calls are planned, carrying only admitted events.
Dimensions (decision 0020) widen both stages without changing their shape: the registration
admits values and combinations too, and each event's line carries what it resolved to.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from exporter.events import MICROS_PER_UNIT, OTHER, Event
from exporter.store import ApplyResult, Outcome
from exporter.store.detail import ALL_DIMENSIONS, CountingConfig, Fold, FoldReason
from exporter.store.keys import ShardKeys, StoreKeys, shard_of
from exporter.store.redis_series import bucket_marks, unbucketed_positions
from exporter.store.series import SeriesPolicy
from exporter.store.totals_marker import Marker

# Lua adds a chunk's whole units in doubles; 1000 events of at most 1e12 stay below 2^53.
MAX_EVENTS_PER_SCRIPT: Final = 1000
# What apply.lua's code for an event means.
OUTCOMES: Final[dict[int, Outcome]] = {
    0: "duplicate",
    1: "applied",
    2: "too_many_types",
    3: "sum_overflow",
}
# apply.lua's fixed arguments say the type cap was checked on the global slot.
GLOBAL_CAP: Final = "global"
# What a fold text's mark for one dimension means (decision 0020); '-' is no fold.
FOLD_MARKS: Final[dict[str, FoldReason]] = {"i": "invalid", "v": "values"}
# Blocks of keys kept ready per (shard, generation, type); past this many they are made again.
MAX_CACHED_BLOCKS: Final = 100_000
# A fold text's last mark when the combination cap folded the event.
COMBINATION_FOLDED: Final = "c"

Item = tuple[str, Event]


@dataclass(frozen=True, slots=True)
class Admission:
    """The registration's answer: the generation to write into, and the types admitted under
    the cap (None: all, the shard's script checks the cap itself, as with one shard); with
    dimensions, per batch position what its values became (a fold text, see apply.lua; None:
    the shard's script admits them itself)."""

    generation: int
    admitted: Collection[str] | None = None
    folds: Sequence[str] | None = None


ONE_SHARD: Final = Admission(0)
"""One shard needs no registration: generation 0, the cap checked inside apply.lua."""


@dataclass(frozen=True, slots=True)
class Registration:
    """The first stage with K > 1: one `register.lua` call on the global slot."""

    keys: tuple[str, ...]
    args: tuple[str | int, ...]
    types: tuple[str, ...]
    """The batch's distinct types, in the order of `args` and of the reply's flags."""
    dimensions: bool = False
    """Whether the reply goes on with a fold text per event of the batch."""

    def admission(self, reply: Sequence[Any]) -> Admission:
        """The reply `{generation, flag per type[, fold text per event]}` as an Admission."""
        end = 1 + len(self.types)
        flags = reply[1:end]
        admitted = {name for name, ok in zip(self.types, flags, strict=True) if int(ok)}
        if not self.dimensions:
            return Admission(int(reply[0]), admitted)
        folds = [text.decode() if isinstance(text, bytes) else str(text) for text in reply[end:]]
        return Admission(int(reply[0]), admitted, folds)


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One `apply.lua` call: its declared keys and arguments, in the script's order."""

    keys: tuple[str | bytes, ...]
    args: tuple[str | int, ...]
    size: int
    """How many events it carries: its reply starts with as many codes."""
    folds: bool = False
    """Whether the codes are followed by as many fold texts (dimensions are declared)."""


@dataclass(frozen=True, slots=True)
class ShardWrite:
    """One shard's part of a batch: its calls, run in order, on one slot."""

    shard: ShardKeys
    totals: str
    """The totals hash whose marker (decision 0017) every reply of this part ends with."""
    calls: tuple[ScriptCall, ...]
    positions: tuple[int, ...]
    """The batch positions of the part's events, in the order of its calls' codes."""


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Every script call of one batch, grouped by shard (the shards may run concurrently)."""

    size: int
    generation: int
    shards: tuple[ShardWrite, ...]
    minutes: Sequence[int | None] | None
    """Each event's bucket minute (None: too old or too new); None when buckets are off."""
    dimensions: tuple[str, ...] = ()
    """The dimensions whose folds the replies' fold texts name, in order."""

    def result(self, replies: Sequence[PartReply]) -> ApplyResult:
        """The batch's result from each shard part's codes and fold texts (in `shards` order);
        an event in no part was refused by the registration (its type over the cap)."""
        outcomes: list[Outcome] = ["too_many_types"] * self.size
        texts: dict[int, str] = {}
        for part, (part_codes, part_folds) in zip(self.shards, replies, strict=True):
            for position, code in zip(part.positions, part_codes, strict=True):
                outcomes[position] = OUTCOMES[code]
            if part_folds:
                texts.update(zip(part.positions, part_folds, strict=True))
        done = tuple(outcomes)
        minutes = self.minutes
        folds: list[Fold] = []
        for position in sorted(texts):
            if done[position] == "applied":
                folds += read_folds(position, texts[position], self.dimensions)
        return ApplyResult(
            done,
            () if minutes is None else unbucketed_positions(done, minutes),
            tuple(folds),
        )


PartReply = tuple[list[int], list[str]]
"""One shard part's codes and fold texts (empty without dimensions), in its events' order."""


def read_folds(position: int, text: str, dimensions: Sequence[str]) -> list[Fold]:
    """The folds one fold text says for the applied event at `position` (decision 0020)."""
    folds = [
        Fold(position, name, FOLD_MARKS[mark])
        for name, mark in zip(dimensions, text, strict=False)
        if mark in FOLD_MARKS
    ]
    if text[len(dimensions) : len(dimensions) + 1] == COMBINATION_FOLDED:
        folds.append(Fold(position, ALL_DIMENSIONS, "combinations"))
    return folds


def read_reply(reply: Sequence[Any], call: ScriptCall) -> tuple[list[int], list[str], Marker]:
    """One `apply.lua` reply: a code per event, a fold text per event with dimensions, then the
    totals hash's marker."""
    writes, since, reset = reply[-3:]
    marker = Marker(int(since), int(writes), None if reset is None else int(reset))
    size = call.size
    codes = [int(code) for code in reply[:size]]
    if not call.folds:
        return codes, [], marker
    texts = [t.decode() if isinstance(t, bytes) else str(t) for t in reply[size : 2 * size]]
    return codes, texts, marker


@dataclass(frozen=True, slots=True)
class WritePlanner:
    """Plans batches for one store: its keys, de-duplication window, type cap, series, and what
    it counts beyond totals (`counting`: dimensions, their caps, value buckets)."""

    keys: StoreKeys
    window_seconds: int
    max_types: int
    series: SeriesPolicy
    counting: CountingConfig = field(default_factory=CountingConfig)
    _blocks: dict[tuple[str, int, str], tuple[bytes, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Each (shard tag, generation, type)'s block of keys, as ready bytes: made once, as the
    seen keys' prefix is (the client frames every key of every call)."""

    @property
    def sharded(self) -> bool:
        """Whether batches take the two stages (K > 1)."""
        return len(self.keys.shards) > 1

    @property
    def detailed(self) -> bool:
        """Whether events carry more than totals: value buckets or dimensions."""
        return self.counting.buckets.enabled or bool(self.counting.dimensions)

    def check(self, batch: Sequence[Item]) -> None:
        """ValueError unless every event carries one value per dimension of this store (nothing
        of such a batch is planned)."""
        self.counting.check(batch)

    def registration(self, batch: Sequence[Item]) -> Registration | None:
        """The first stage's call, or None with one shard (no first stage)."""
        if not self.sharded:
            return None
        distinct = tuple(dict.fromkeys(event.type for _, event in batch))
        counting = self.counting
        if not counting.dimensions:
            return Registration(
                keys=(self.keys.types, self.keys.generation),
                args=(self.max_types, "\n".join(distinct)),
                types=distinct,
            )
        numbers = {name: str(n) for n, name in enumerate(distinct, 1)}
        lines = "\n".join(
            numbers[event.type] + "".join("|" + v for v in event.dimensions) for _, event in batch
        )
        return Registration(
            keys=(
                self.keys.types,
                self.keys.generation,
                self.keys.admissions,
                *(key for name in distinct for key in self._admission_keys(name)),
            ),
            args=(
                self.max_types,
                "\n".join(distinct),
                f"{len(counting.dimensions)} {counting.max_values} {counting.max_combinations}",
                lines,
            ),
            types=distinct,
            dimensions=True,
        )

    def _block(
        self, shard: ShardKeys, generation: int, event_type: str, *, admit: bool
    ) -> tuple[bytes, ...]:
        """One type's keys in an apply call: its detail hash, its joint hash (with dimensions),
        and with `admit` its value and combination sets (apply.lua's ARGV[6] says the layout)."""
        cached = self._blocks.get((shard.tag, generation, event_type))
        if cached is not None:
            return cached
        keys = [shard.detail(generation, event_type)]
        if self.counting.dimensions:
            keys.append(shard.joint(generation, event_type, self.counting.configuration_id))
        if admit:
            keys.extend(self._admission_keys(event_type))
        block = tuple(key.encode() for key in keys)
        if len(self._blocks) >= MAX_CACHED_BLOCKS:  # types are capped, generations are not
            self._blocks.clear()
        self._blocks[shard.tag, generation, event_type] = block
        return block

    def _admission_keys(self, event_type: str) -> tuple[str, ...]:
        """One type's value sets (per dimension, in order) and its combination set."""
        counting = self.counting
        return (
            *(self.keys.values(event_type, name) for name in counting.dimensions),
            self.keys.combinations(event_type, counting.configuration_id),
        )

    def plan(self, batch: Sequence[Item], admission: Admission, now_s: float) -> WritePlan:
        """The shard calls of `batch` at `now_s` (unix seconds), given the registration's
        answer (ONE_SHARD with one shard)."""
        minutes = self._minutes(batch, now_s)
        now_ms = str(int(now_s * 1000))
        generation = admission.generation
        dimensions = self.counting.dimensions
        if not self.sharded:
            shard = self.keys.shards[0]
            everything = tuple(range(len(batch)))
            part = self._shard_write(
                shard,
                batch,
                everything,
                minutes=minutes,
                generation=generation,
                now_ms=now_ms,
                folds=None,
            )
            return WritePlan(len(batch), generation, (part,), minutes, dimensions)
        admitted = admission.admitted
        positions: dict[int, list[int]] = {}
        count = len(self.keys.shards)
        for index, (identity, event) in enumerate(batch):
            if admitted is None or event.type in admitted:
                positions.setdefault(shard_of(identity, count), []).append(index)
        shards = self.keys.shards
        parts = tuple(
            self._shard_write(
                shards[n],
                batch,
                tuple(ps),
                minutes=minutes,
                generation=generation,
                now_ms=now_ms,
                folds=admission.folds,
            )
            for n, ps in positions.items()
        )
        return WritePlan(len(batch), generation, parts, minutes, dimensions)

    def _minutes(self, batch: Sequence[Item], now_s: float) -> list[int | None] | None:
        """Each event's UTC minute (None: too old or too new for a bucket); None when disabled."""
        if not self.series.enabled:
            return None
        minute_of = self.series.minute_of
        return [minute_of(event.occurred_at.timestamp(), now_s) for _, event in batch]

    def _shard_write(
        self,
        shard: ShardKeys,
        batch: Sequence[Item],
        positions: tuple[int, ...],
        *,
        minutes: Sequence[int | None] | None,
        generation: int,
        now_ms: str,
        folds: Sequence[str] | None,
    ) -> ShardWrite:
        calls = []
        for start in range(0, len(positions), MAX_EVENTS_PER_SCRIPT):
            chunk_positions = positions[start : start + MAX_EVENTS_PER_SCRIPT]
            whole = len(chunk_positions) == len(batch)  # one call of the whole batch: no copies
            chunk = batch if whole else [batch[i] for i in chunk_positions]
            chunk_minutes = (
                minutes if minutes is None or whole else [minutes[i] for i in chunk_positions]
            )
            chunk_folds = folds if folds is None or whole else [folds[i] for i in chunk_positions]
            calls.append(
                self._call(
                    shard,
                    chunk,
                    minutes=chunk_minutes,
                    generation=generation,
                    now_ms=now_ms,
                    folds=chunk_folds,
                )
            )
        return ShardWrite(shard, shard.totals(generation), tuple(calls), positions)

    def _call(
        self,
        shard: ShardKeys,
        chunk: Sequence[Item],
        *,
        minutes: Sequence[int | None] | None,
        generation: int,
        now_ms: str,
        folds: Sequence[str] | None,
    ) -> ScriptCall:
        # redis-py encodes and frames every argument in Python, which was most of an apply's
        # client CPU (docs/benchmarks.md): the keys go as ready bytes (each must stay a declared
        # key, decision 0001), and all events' parts travel as one argument, a line per event.
        keys: list[str | bytes] = [shard.totals(generation)]
        if not self.sharded:
            keys.append(self.keys.types)
        seen = shard.seen_prefix
        marks, bucket_keys, expiries = bucket_marks(
            shard, generation=generation, policy=self.series, chunk=chunk, minutes=minutes
        )
        keys.extend(seen + identity.encode() for identity, _ in chunk)
        keys.extend(bucket_keys)
        cap: str | int = GLOBAL_CAP if self.sharded else self.max_types
        if not self.detailed:
            lines = [
                f"{units} {frac} {mark} {event.type}"
                for (_, event), mark in zip(chunk, marks, strict=True)
                for units, frac in (divmod(event.value_micros, MICROS_PER_UNIT),)
            ]
            args: tuple[str | int, ...] = (
                self.window_seconds, cap, now_ms, "\n".join(lines), expiries,
            )  # fmt: skip
            return ScriptCall(tuple(keys), args, len(chunk))
        suffixes, header, names = self._counting(
            shard, chunk, keys=keys, generation=generation, folds=folds
        )
        lines = [
            f"{units} {frac} {mark} {event.type}{suffix}"
            for (_, event), mark, suffix in zip(chunk, marks, suffixes, strict=True)
            for units, frac in (divmod(event.value_micros, MICROS_PER_UNIT),)
        ]
        args = (self.window_seconds, cap, now_ms, "\n".join(lines), expiries, header, names)
        return ScriptCall(tuple(keys), args, len(chunk), bool(self.counting.dimensions))

    def _counting(
        self,
        shard: ShardKeys,
        chunk: Sequence[Item],
        *,
        keys: list[str | bytes],
        generation: int,
        folds: Sequence[str] | None,
    ) -> tuple[list[str], str, str]:
        """What each event's line carries beyond totals, and the call's keys for it, appended to
        `keys` (decisions 0020, 0021); with apply.lua's last two arguments."""
        counting = self.counting
        width = len(counting.dimensions)
        admit = width > 0 and not self.sharded  # with one shard apply.lua admits values itself
        buckets = counting.buckets
        text_of = buckets.text_of if buckets.enabled else None
        keys.append(shard.detail_index(generation))
        index_at = len(keys)
        admissions_at = 0
        if admit:
            keys.append(self.keys.admissions)
            admissions_at = len(keys)
        blocks_at = len(keys) + 1
        # Per type of the call, "|<its block>|": made once per type, not per event.
        prefixes: dict[str, str] = {}
        suffixes: list[str] = []
        for n, (_, event) in enumerate(chunk):
            prefix = prefixes.get(event.type)
            if prefix is None:
                prefix = prefixes[event.type] = f"|{len(prefixes) + 1}|"
                keys.extend(self._block(shard, generation, event.type, admit=admit))
            bound = text_of(event.value_micros) if text_of is not None else ""
            if not width:
                suffixes.append(f"{prefix}{bound}|")
                continue
            values = event.dimensions
            text = ""
            if folds is not None:
                text = folds[n]
                if "v" in text:
                    values = tuple(
                        OTHER if mark == "v" else value
                        for value, mark in zip(values, text, strict=False)
                    )
            suffixes.append(f"{prefix}{bound}|{text}|" + "|".join(values))
        block = 1 + (1 if width else 0) + (width + 1 if admit else 0)
        header = (
            f"{index_at} {admissions_at} {blocks_at} {block} {width} "
            f"{counting.max_values if admit else 0} {counting.max_combinations}"
        )
        return suffixes, header, ",".join(counting.dimensions)


__all__ = [
    "MAX_EVENTS_PER_SCRIPT",
    "ONE_SHARD",
    "Admission",
    "PartReply",
    "Registration",
    "ScriptCall",
    "ShardWrite",
    "WritePlan",
    "WritePlanner",
    "read_folds",
    "read_reply",
]
