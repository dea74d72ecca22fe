"""The consume loop: receive a batch, apply it to the store in one call, then acknowledge it.

It sees only the `Store` and `Source` protocols and a metrics dataclass. The order of effects is
the whole guarantee: a message is deleted only after its effect is durable (applied, known as a
duplicate, or forwarded to the dead-letter queue); anything else is left for SQS to redeliver.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from opentelemetry import trace
from opentelemetry.trace import Link, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter

from exporter.events import (
    MICROS_PER_UNIT,
    Event,
)
from exporter.faults import Fatal
from exporter.metrics import (
    STAGES,
    ProcessorMetrics,
    trace_exemplar,
)
from exporter.processing.config import ProcessorConfig
from exporter.processing.depth import poll_depths
from exporter.processing.fifo import in_group_order
from exporter.processing.parsing import identity_of, parse_batch
from exporter.processing.recovery import StoreRecovery
from exporter.processing.stages import BatchContext, StageTimer
from exporter.processing.visibility import VisibilityKeeper, Watch
from exporter.retry import Backoff, first_of, sleep_unless
from exporter.sqs.messages import (
    DeadLetter,
    Message,
    Source,
    SourceMisconfigured,
    SourceUnavailable,
)
from exporter.store import (
    ApplyResult,
    Store,
    StoreMisconfigured,
    StoreRefused,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

MAX_RECEIVE: Final = 10
# A stop abandons receives only when they may wait longer than this (SQS_WAIT_TIME_SECONDS):
# a shorter one ends about as soon, and then its messages are released, not left hidden.
ABANDON_RECEIVES_LONGER_THAN_SECONDS: Final = 2
# Extend a batch's visibility when half the timeout has passed: the other half absorbs a slow call.
EXTEND_AT_FRACTION: Final = 0.5
# After an extension failed: the next try, at most this soon.
EXTEND_RETRY_SECONDS: Final = 1.0
_PROPAGATOR: Final = TraceContextTextMapPropagator()


def _has_attributes(message: Message) -> bool:
    return bool(message.attributes)


def producer_link(message: Message) -> Link | None:
    """A span link to the producer's trace, from its W3C `traceparent` attribute."""
    return traceparent_link(message.traceparent)


def traceparent_link(traceparent: str | None) -> Link | None:
    """A span link to the trace a W3C `traceparent` names, if it is valid."""
    if not traceparent:
        return None
    context = _PROPAGATOR.extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def _refusal_detail(outcome: str, event: Event) -> str:
    if outcome == "too_many_types":
        return f"type {event.type!r} is new and the store already holds its cap of event types"
    return f"the sum of type {event.type!r} would pass the store's bound of 9e18"


class Processor:
    """Several pollers sharing one store and one source, until told to stop."""

    def __init__(
        self,
        store: Store,
        source: Source,
        metrics: ProcessorMetrics,
        config: ProcessorConfig,
        *,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._source = source
        self._metrics = metrics
        self._config = config
        self._tracer = tracer or trace.get_tracer(__name__)
        self._clock = clock
        self._stopping = asyncio.Event()
        self._recovery = StoreRecovery(
            store,
            metrics,
            self._stopping,
            on_change=self._publish_ready,
            on_fatal=self._stop_fatally,
            backoff=Backoff(config.backoff_base_seconds, config.store_probe_cap_seconds),
        )
        self._store_ok = self._recovery.ok
        self._source_ok = True
        self._running = False
        self._fatal: Fatal | None = None
        self._stage_durations = {
            stage: metrics.batch_stage_duration.labels(stage=stage) for stage in STAGES
        }
        self._by_type: dict[str, Counter] = {}
        self._visibility = VisibilityKeeper()
        self._received_from: dict[str, Counter] = {}
        # Pollers waiting on a receive (a long poll of up to 20 s) and batches being handled:
        # on stop the first are abandoned at once, the second finish within the deadline.
        self._receiving: set[asyncio.Task[None]] = set()
        self._batches_in_flight = 0
        # Batches in hand when the store refused, kept hidden and worked on again by the
        # pollers once it takes writes (see _hold): messages, when received, their watch.
        self._held: list[tuple[Sequence[Message], float, Watch]] = []

    # -- state -------------------------------------------------------------------------------

    @property
    def polling(self) -> bool:
        """Whether pollers are receiving now (not stopping, not backing off from a fault)."""
        return (
            self._running
            and not self._stopping.is_set()
            and self._store_ok.is_set()
            and self._source_ok
        )

    async def check_polling(self) -> None:
        """Raise unless polling; used by /ready."""
        if not self._running:
            raise RuntimeError("not started")
        if self._stopping.is_set():
            raise RuntimeError("shutting down")
        problem = self._recovery.problem
        if problem is not None:
            raise RuntimeError(problem)
        if not self._source_ok:
            raise RuntimeError("backing off: SQS is unavailable")

    def _publish_ready(self) -> None:
        self._metrics.ready.set(1 if self.polling else 0)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, then drain within the shutdown deadline."""
        self._running = True
        try:
            await self._store.probe_write()
        except StoreMisconfigured as exc:
            self._stop_fatally(exc)
        except (StoreUnavailable, StoreRefused) as exc:
            # Start paused rather than receive batches that could not be stored.
            self._recovery.failed(exc, "probe")
        self._publish_ready()
        pollers = [
            asyncio.create_task(self._poll(), name=f"poller-{n}")
            for n in range(self._config.pollers)
        ]
        depth = asyncio.create_task(
            poll_depths(
                self._source,
                self._metrics,
                self._stopping,
                self._config.queue_depth_interval_seconds,
            ),
            name="queue-depth",
        )
        try:
            await self._until_stopped(stop)
            abandoned = self._abandon_receives()
            log.info(
                (
                    "stopping: long polls in progress abandoned (a message SQS hands one of "
                    "them before its wait ends reappears after its visibility timeout); "
                    "finishing in-flight batches"
                    if abandoned
                    else "stopping: finishing in-flight batches"
                ),
                extra={
                    "receives_abandoned": abandoned,
                    "batches_in_flight": self._batches_in_flight,
                    "visibility_timeout_seconds": self._config.visibility_timeout_seconds,
                },
            )
            _, late = await asyncio.wait(pollers, timeout=self._config.shutdown_timeout_seconds)
            if late:
                log.warning(
                    "shutdown deadline passed; unfinished messages reappear after their "
                    "visibility timeout",
                    extra={"pollers": len(late)},
                )
        finally:
            # Also reached when the caller cancels run(): no task of ours may outlive it.
            self._stopping.set()
            background = [*pollers, depth]
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._release_held()
            await self._recovery.close()
            self._running = False
            self._publish_ready()
        if self._fatal is not None:
            raise self._fatal
        log.info("stopped")

    async def _until_stopped(self, stop: asyncio.Event) -> None:
        """Return when the caller sets `stop` or a fatal error stops the pollers."""
        await first_of(stop.wait(), self._stopping.wait())
        self._stopping.set()
        self._publish_ready()

    def _abandon_receives(self) -> int:
        """Cancel every poller waiting on a long receive, and say how many.

        An idle processor would otherwise take up to SQS_WAIT_TIME_SECONDS (20 s) to stop, for
        a long poll that can bring nothing but messages to release. SQS does not learn that
        the receive was given up: what it hands that receive, until the receive's wait would
        have ended, stays hidden until its visibility timeout ends, then SQS hands it out again
        (docs/reliability.md). A batch already received is not touched: it finishes. Receives
        of a short wait are let end, as they did before, and their messages released.
        """
        if self._config.receive_wait_seconds <= ABANDON_RECEIVES_LONGER_THAN_SECONDS:
            return 0
        abandoned = list(self._receiving)
        for poller in abandoned:
            poller.cancel()
        return len(abandoned)

    async def _poll(self) -> None:
        backoff = Backoff(self._config.backoff_base_seconds, self._config.backoff_cap_seconds)
        poller = asyncio.current_task()
        assert poller is not None  # a poller is a task of run()'s
        while not self._stopping.is_set():
            if not self._store_ok.is_set():
                await self._recovery.wait()
                continue
            if self._held:
                # A batch held while the store refused is worked on here before anything new
                # is received: it costs SQS no further receive (see _hold).
                messages, received_at, watch = self._held.pop(0)
                await self._visibility.release(watch)
                self._metrics.messages_in_flight.dec(len(messages))
                await self._work_on(messages, received_at, None)
                continue
            started = time.monotonic()
            receive_start_ns = time.time_ns()
            messages = await self._receive(poller, backoff)
            if not messages:
                continue
            self._received_counter(messages[0].queue).inc(len(messages))
            self._metrics.batch_size.observe(len(messages))
            self._stage_durations["receive"].observe(time.monotonic() - started)
            await self._work_on(messages, started, (receive_start_ns, time.time_ns()))

    async def _work_on(
        self,
        messages: Sequence[Message],
        received_at: float,
        receive_window_ns: tuple[int, int] | None,
    ) -> None:
        """Handle one batch in a poller: the store's failures pause polling and hold or give
        back the batch; nothing raised here stops the poller."""
        self._metrics.messages_in_flight.inc(len(messages))
        self._batches_in_flight += 1
        try:
            if self._stopping.is_set() or not self._store_ok.is_set():
                await self._give_back(messages, received_at, failed=False)
                return
            await self.handle_batch(
                messages, received_at=received_at, receive_window_ns=receive_window_ns
            )
        except StoreMisconfigured as exc:
            self._stop_fatally(exc)
            await self._give_back(messages, received_at, failed=True)
        except (StoreUnavailable, StoreRefused) as exc:
            self._recovery.failed(exc, "apply")
            await self._give_back(messages, received_at, failed=True)
        except Exception:
            # A bug must not kill the poller; the messages reappear and, if the bug
            # persists, the redrive policy moves them to the dead-letter queue.
            log.exception("unexpected error while handling a batch")
        finally:
            self._batches_in_flight -= 1
            self._metrics.messages_in_flight.dec(len(messages))

    async def _receive(self, poller: asyncio.Task[None], backoff: Backoff) -> Sequence[Message]:
        """One receive; nothing when it failed (after a pause) or SQS refused the configuration
        (the processor is then stopping).

        The receive's one retry layer (decision 0022): the source makes one attempt, and a
        failure pauses this poller for its backoff before its next receive, for as long as SQS
        fails; readiness says so meanwhile.
        """
        self._receiving.add(poller)
        try:
            messages = await self._source.receive(MAX_RECEIVE)
        except SourceUnavailable as exc:
            self._source_ok = False
            self._publish_ready()
            log.warning("SQS receive failed; backing off", extra={"error": str(exc)})
            await sleep_unless(self._stopping, backoff.next_delay())
            return ()
        except SourceMisconfigured as exc:
            log.error("SQS refuses this configuration: %s", exc)  # noqa: TRY400 - no trace
            self._fatal = exc
            self._stopping.set()
            return ()
        finally:
            # Left as soon as the poller runs again with the answer, so a stop never cancels a
            # poller with a batch in hand; one whose answer had arrived but which had not run
            # yet is cancelled, and that answer's messages wait for their visibility timeout.
            self._receiving.discard(poller)
        backoff.reset()
        if not self._source_ok:
            self._source_ok = True
            self._publish_ready()
        return messages

    async def _give_back(
        self, messages: Sequence[Message], received_at: float, *, failed: bool
    ) -> None:
        """A batch not to work on now: held while Redis refuses writes; otherwise one that was
        never started goes back to SQS at once, and one that failed comes back after its
        visibility timeout, as it always did.

        An outage may be this replica's alone (its network), so its batches return to SQS for
        the others; a refusal is Redis's own answer, which the others meet too.
        """
        if self._recovery.refused and not self._stopping.is_set():
            self._hold(messages, received_at)
        elif not failed or self._stopping.is_set():
            await self._release(messages)

    def _hold(self, messages: Sequence[Message], received_at: float) -> None:
        """Keep a batch Redis refused hidden, to work on it again here once it takes writes.

        Left to its visibility timeout, it would come back while the store still refuses, to a
        replica that has not met the refusal yet, and each such receive spends one of
        EXPORTER_MAX_RECEIVE_COUNT: at a memory limit some writes pass and some do not, and two
        failed receives were enough for SQS's redrive (decision 0017). Given back to SQS on
        resume, it spent one more receive, and a second refusal soon after (or a visibility
        extension lost under load while held) could take it to the dead-letter queue. Worked
        on here after the resume, a held batch spends no further receive; stopping gives back
        what is still held.
        """
        self._metrics.messages_in_flight.inc(len(messages))
        watch = self._keep_hidden(BatchContext(messages, received_at))
        self._held.append((messages, received_at, watch))

    async def _release_held(self) -> None:
        """Give every held batch back to SQS at once (stopping)."""
        held, self._held = self._held, []
        for messages, _, watch in held:
            await self._visibility.release(watch)
            await self._release(messages)
            self._metrics.messages_in_flight.dec(len(messages))

    async def _release(self, messages: Sequence[Message]) -> None:
        """Make received-but-unstarted messages visible again at once."""
        try:
            await self._source.change_visibility(messages, 0)
        except SourceUnavailable as exc:
            log.warning("could not release messages", extra={"error": str(exc)})

    # -- store faults --------------------------------------------------------------------------

    def _stop_fatally(self, exc: StoreMisconfigured) -> None:
        # The data was written with other settings: waiting cannot help, and guessing wrong
        # would split totals, so the processor stops with the one line that says why.
        log.error("%s", exc)
        self._fatal = exc
        self._stopping.set()

    # -- one batch ---------------------------------------------------------------------------

    async def handle_batch(
        self,
        messages: Sequence[Message],
        *,
        received_at: float | None = None,
        receive_window_ns: tuple[int, int] | None = None,
    ) -> None:
        """Apply, dead-letter and delete one received batch; the store's errors go up untouched.

        `received_at` is when the receive started (`time.monotonic()`; now when None), and
        `receive_window_ns` its wall-clock start and end, for the receive's span.
        """
        start_ns = receive_window_ns[0] if receive_window_ns else time.time_ns()
        span = self._tracer.start_span(
            "batch",
            start_time=start_ns,
            attributes={
                "messaging.system": "aws_sqs",
                "messaging.batch.message_count": len(messages),
            },
        )
        received_at = received_at or time.monotonic()
        if not span.is_recording() and not span.get_span_context().is_valid:
            # Tracing off: the no-op span would only be made current and ended again, which
            # cost more than the rest of the batch's bookkeeping; nothing reads it (the
            # exemplar and the logs' trace id need a valid context).
            await self._guarded(BatchContext(messages, received_at))
            return
        with trace.use_span(span, end_on_exit=True):
            recording = span.is_recording()
            if recording:
                self._record_receive(span, messages, receive_window_ns)
            # Stage spans of a batch span that is not recorded would not be recorded either
            # (every standard sampler decides by parent or trace id), and cost more than the
            # stage itself when tracing is off (docs/benchmarks.md); the exemplar is the batch's
            # trace id.
            await self._guarded(BatchContext(messages, received_at, recording, trace_exemplar()))

    def _record_receive(
        self,
        span: trace.Span,
        messages: Sequence[Message],
        receive_window_ns: tuple[int, int] | None,
    ) -> None:
        """On a recorded batch span: links to the producers' traces, and the receive's span."""
        # Links to the producers' traces are added only to a span that is recorded: parsing
        # every message's traceparent was a sixth of the processor's CPU with tracing off
        # (docs/benchmarks.md). Standard samplers do not look at links.
        for link in map(producer_link, filter(_has_attributes, messages)):
            if link is not None:
                span.add_link(link.context, link.attributes)
        if receive_window_ns is not None:
            # The receive happened before the batch existed; record it with its real times.
            receive_span = self._tracer.start_span("receive", start_time=receive_window_ns[0])
            receive_span.end(end_time=receive_window_ns[1])

    async def _guarded(self, batch: BatchContext) -> None:
        """Process the batch, its visibility extended meanwhile if it runs long."""
        watch = self._keep_hidden(batch)
        try:
            await self._process(batch)
        finally:
            await self._visibility.release(watch)

    async def _process(self, batch: BatchContext) -> None:
        config = self._config
        messages = batch.messages
        read = parse_batch(
            messages,
            config.max_message_bytes,
            unwrap=config.unwrap_envelopes,
            options=config.contract,
        )
        letters, parsed = read.letters, read.events
        if batch.traced and read.envelope_traceparents:
            # SNS carries the producer's trace context inside the notification, not as an SQS
            # attribute: it is known only now, after the batch span started.
            span = trace.get_current_span()
            for link in map(traceparent_link, read.envelope_traceparents):
                if link is not None:
                    span.add_link(link.context, link.attributes)

        done: list[Message] = []
        if parsed:
            done += await self._apply(parsed, letters, batch)
        for letter in letters:
            self._metrics.events_invalid.labels(reason=letter.reason).inc()
        if letters:
            sent = await self._dead_letter(letters, batch)
            await self._count_rejected(letters, sent)
            done += sent
        if done and messages[0].group_id is not None:
            done = self._in_group_order(messages, done)
        if done:
            await self._delete(done, batch)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch done",
                extra={
                    "received": len(messages),
                    "rejected": len(letters),
                    "acknowledged": len(done),
                },
            )

    async def _apply(
        self,
        parsed: Sequence[tuple[Message, str, Event]],
        letters: list[DeadLetter],
        batch: BatchContext,
    ) -> list[Message]:
        """Store the batch in one call; return the messages whose effect is now durable."""
        with self._stage("store", batch):
            result = await self._store.apply([(identity, event) for _, identity, event in parsed])
        now = self._clock()
        durable: list[Message] = []
        # Metrics are written once per batch (per type for the labelled ones), not per event:
        # a labelled child lookup and an observation each cost about a microsecond
        # (docs/benchmarks.md). The series end exactly as if every event were observed alone.
        applied_micros: dict[str, list[int]] = {}
        lags: list[float] = []
        duplicates = 0
        for (message, _, event), outcome in zip(parsed, result.outcomes, strict=True):
            if outcome == "applied":
                micros = applied_micros.get(event.type)
                if micros is None:
                    applied_micros[event.type] = [event.value_micros]
                else:
                    micros.append(event.value_micros)
                lag = now - event.occurred_at.timestamp()
                lags.append(lag if lag > 0.0 else 0.0)
                durable.append(message)
            elif outcome == "duplicate":
                duplicates += 1
                durable.append(message)
            else:
                letters.append(DeadLetter(message, outcome, _refusal_detail(outcome, event)))
        self._metrics.event_lag.observe_many(lags, batch.exemplar)
        for event_type, values in applied_micros.items():
            self._metrics.event_value.observe_many(
                [micros / MICROS_PER_UNIT for micros in values], label_value=event_type
            )
            self._processed_counter(event_type).inc(len(values), batch.exemplar)
        if result.folds:
            self._count_folds(parsed, result)
        if duplicates:
            self._metrics.events_duplicate.inc(duplicates, batch.exemplar)
        if result.unbucketed:
            self._metrics.events_unbucketed.inc(len(result.unbucketed))
        return durable

    def _count_folds(
        self, parsed: Sequence[tuple[Message, str, Event]], result: ApplyResult
    ) -> None:
        """Count the dimensions the store folded, as applied (a duplicate folds nothing)."""
        folded = collections.Counter(
            (parsed[fold.position][2].type, fold.dimension, fold.reason) for fold in result.folds
        )
        for (event_type, dimension, reason), count in folded.items():
            self._metrics.dimension_folded.labels(
                type=event_type, dimension=dimension, reason=reason
            ).inc(count)

    async def _count_rejected(self, letters: Sequence[DeadLetter], sent: Sequence[Message]) -> None:
        """Add the dead-lettered events to the shared rejected counts before they are deleted.

        A failure raises the store's error, so the messages stay and come back: a reject may be
        counted twice, never lost (at least once is enough for these counts, decision 0008).
        """
        sent_ids = {id(message) for message in sent}
        by_reason = collections.Counter(
            letter.reason for letter in letters if id(letter.message) in sent_ids
        )
        if by_reason:
            await self._store.add_rejected(by_reason)

    def _in_group_order(
        self, messages: Sequence[Message], done: Sequence[Message]
    ) -> list[Message]:
        """On a FIFO queue, what may be deleted without moving a group past an unsettled one."""
        order = in_group_order(messages, done)
        if order.held:
            log.info(
                "messages held behind an unsettled message of their group; they come back "
                "after the visibility timeout, in order",
                extra={"held": len(order.held), "queue": messages[0].queue},
            )
        return order.deletable

    def _received_counter(self, queue: str) -> Counter:
        """The received-messages child of one queue, looked up once per process and queue."""
        counter = self._received_from.get(queue)
        if counter is None:
            counter = self._metrics.messages_received.labels(queue_name=queue)
            self._received_from[queue] = counter
        return counter

    def _processed_counter(self, event_type: str) -> Counter:
        """The labelled child of one type, looked up once per process and type."""
        counter = self._by_type.get(event_type)
        if counter is None:
            counter = self._metrics.events_processed.labels(type=event_type)
            self._by_type[event_type] = counter
        return counter

    async def _dead_letter(
        self, letters: Sequence[DeadLetter], batch: BatchContext
    ) -> list[Message]:
        """Forward rejects; only those the dead-letter queue accepted may be deleted."""
        with self._stage("dead_letter", batch):
            try:
                sent = await self._source.dead_letter(letters)
            except SourceUnavailable as exc:
                log.warning("dead-lettering failed; SQS will redeliver", extra={"error": str(exc)})
                return []
        sent_ids = {id(message) for message in sent}
        for letter in letters:
            if id(letter.message) in sent_ids:
                self._metrics.messages_dead_lettered.labels(
                    reason=letter.reason,
                    queue_name=self._source.dead_letter_queue(letter.message.queue),
                ).inc(1, batch.exemplar)
        return list(sent)

    async def _delete(self, messages: Sequence[Message], batch: BatchContext) -> None:
        with self._stage("delete", batch):
            try:
                failed = await self._source.delete(messages)
            except SourceUnavailable as exc:
                log.warning("delete failed; SQS will redeliver", extra={"error": str(exc)})
                return
        if failed:
            # Harmless: a redelivered message is recognised as a duplicate and deleted then.
            log.warning("some deletes failed", extra={"failed": len(failed)})

    def _stage(self, stage: str, batch: BatchContext) -> StageTimer:
        span = self._tracer.start_as_current_span(stage) if batch.traced else None
        return StageTimer(self._stage_durations[stage], span, batch.exemplar)

    def _keep_hidden(self, batch: BatchContext) -> Watch:
        """Extend the batch's visibility while its work runs long (Redis slow)."""
        period = self._config.visibility_timeout_seconds * EXTEND_AT_FRACTION
        return self._visibility.watch(
            max(0.0, batch.received_at + period - time.monotonic()),
            lambda: self._extend_visibility(batch),
        )

    async def _extend_visibility(self, batch: BatchContext) -> None:
        timeout = self._config.visibility_timeout_seconds
        period = timeout * EXTEND_AT_FRACTION
        deadline = batch.received_at + period
        while True:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            try:
                await self._source.change_visibility(batch.messages, timeout)
            except SourceUnavailable as exc:
                # The extension's one retry layer (decision 0022). Half a timeout remains at
                # most, and a batch that shows again spends a receive (a held one is worked on
                # again here, decision 0017): try again soon, not a whole period later.
                log.warning("could not extend visibility", extra={"error": str(exc)})
                deadline = time.monotonic() + min(period / 4, EXTEND_RETRY_SECONDS)
                continue
            log.info("batch is slow: visibility extended", extra={"messages": len(batch.messages)})
            deadline = time.monotonic() + period


__all__ = ["Processor", "ProcessorConfig", "identity_of", "producer_link", "traceparent_link"]
