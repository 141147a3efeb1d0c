"""The pipeline's Kafka consumer inside Faust: what it may commit and acknowledge across rebalances and broker
restarts, its fetch wait, and what it reports for readiness."""

from __future__ import annotations

import itertools
import logging
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.protocol.commit import OffsetCommitRequest
from faust.transport.consumer import ensure_TPset
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock

from runtime.commits import CommitWatch

log = logging.getLogger(__name__)


def in_group(consumer: Any) -> bool:
    """Whether an aiokafka consumer is a member of its group's current generation (it may commit offsets)."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:  # no group (not the pipeline's workers)
        return True
    return bool(coordinator.generation != OffsetCommitRequest.DEFAULT_GENERATION_ID and coordinator.member_id)


def commit_only_as_member(consumer: Any) -> None:
    """Make every attempt of a started consumer's offset commits fail as "rebalanced" while it is not a member of its
    group (:func:`in_group`); the offsets are then not committed, and what they cover is read again.

    Between a broker's "unknown member" answer and the rejoin, aiokafka commits with generation -1 and no member id,
    and a broker takes that from a group without members: the state of every group after a broker came back empty.
    Such a commit carries offsets of the lost topics (a commit retried through the outage, or the batch in hand,
    acked during the revocation that starts the rejoin); it lands on the new topics, and the rejoin then starts
    reading them past their first messages. aiokafka retries a commit through an outage, reading the generation
    anew each time, so the check is made at every attempt, not once per commit.

    An attempt is refused too once the assignment the commit was made under has been replaced: a commit retried
    through an outage would otherwise go through as soon as the consumer is a member again (a broker that lost its
    groups hands out the same generation), with the offsets of the lost topics.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:  # no group, no commits
        return
    send = coordinator._do_commit_offsets

    async def members_only(assignment: Any, offsets: Any) -> Any:
        if not in_group(consumer):
            log.warning(
                "not committing offsets of %d partitions: the consumer is not a member of its group now "
                "(rejoining); what they cover is read again after the rejoin",
                len(offsets),
            )
            raise kafka_errors.UnknownMemberIdError(coordinator.group_id)  # aiokafka: CommitFailedError, rebalanced
        if assignment is not None and not assignment.active:
            log.warning(
                "not committing offsets of %d partitions: they were taken under an assignment the group has replaced "
                "since; what they cover is read again from the committed offsets",
                len(offsets),
            )
            raise kafka_errors.UnknownMemberIdError(coordinator.group_id)
        return await send(assignment, offsets)

    coordinator._do_commit_offsets = members_only


_assignments = itertools.count(1)  # this process's assignments, numbered


class NumberedAssignments(faust_aiokafka.ConsumerRebalanceListener):
    """Gives every assignment of the consumer a number of this process (1, 2, ...) for Faust's generation id,
    instead of the group's generation.

    Faust tags each message with the generation it was fetched in, and skips a message of an earlier one. The
    group's generation does not tell them apart across a broker restart: a broker that lost its groups numbers them
    from the start again (the local broker's first generation is 0 before and after), so a message fetched from a
    topic the broker lost passed for one of the topic created anew under the same name.
    """

    async def on_partitions_assigned(self, assigned: Any) -> None:
        number = next(_assignments)
        self._thread.app.consumer_generation_id = number
        await self._thread.on_partitions_assigned(ensure_TPset(assigned), number)


def fresh_assignment(consumer: Any, assigned: Any) -> int:
    """Drop what Faust still holds of the partitions ``assigned`` anew (acknowledged, read and committed offsets,
    gaps), before it seeks them to their committed offsets; returns how many partitions had any.

    Faust drops it when partitions are revoked, but a batch in hand may be acknowledged between the revocation and
    the assignment. Its offsets would then be committed under the new assignment: on a topic that was recreated
    meanwhile, past messages nobody has read.
    """
    stale = 0
    for tp in assigned:
        held = [book.pop(tp, None) for book in (consumer._acked, consumer._acked_index, consumer._gap)]
        consumer._read_offset.pop(tp, None)
        consumer._committed_offset.pop(tp, None)
        stale += any(held)
    return stale


def current_ack(consumer: Any, message: Any) -> bool:
    """Whether an acknowledgement of ``message`` may count towards the next commit: only if it was fetched under the
    consumer's current assignment (:class:`NumberedAssignments`). An earlier assignment's message is read again
    from the group's committed offset, if the broker still has it."""
    return bool(message.generation_id == consumer.app.consumer_generation_id)


def transport_class(fetch_max_wait_ms: int, commits: CommitWatch) -> type[faust_aiokafka.Transport]:
    """Faust's Kafka transport with a configurable fetch wait (Faust fixes it at 1,500 ms), whose consumer reports
    its commits and assignments to ``commits`` (the transport's ``commits`` attribute, for readiness).

    The wait is how long the broker may hold a fetch that found no data. A broker that does not answer a waiting
    fetch as soon as data arrives (Tansu, the local stack's broker) adds up to that much latency per hop.
    """

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            loop = self.thread_loop

            def rejoin() -> None:  # from the worker's loop; the consumer lives on this thread's
                loop.call_soon_threadsafe(consumer._coordinator.request_rejoin)

            commits.rejoin = rejoin
            return consumer

        async def on_start(self) -> None:
            await super().on_start()
            commit_only_as_member(self._ensure_consumer())

        async def _commit(self, offsets: Any) -> bool:
            commits.commit_started()
            ok = False
            try:
                ok = bool(await super()._commit(offsets))
            finally:
                commits.commit_finished(ok)
            return ok

        async def on_partitions_revoked(self, revoked: Any) -> None:
            commits.assigned(0)
            await super().on_partitions_revoked(revoked)

        async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
            commits.assigned(len(assigned))
            await super().on_partitions_assigned(assigned, generation_id)

    class ShortWaitConsumer(faust_aiokafka.Consumer):
        RebalanceListener = NumberedAssignments

        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

        async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
            stale = fresh_assignment(self, assigned)
            if stale:
                log.warning(
                    "assignment %d: dropped acknowledgements of %d partitions made after their revocation; "
                    "they are read again from the committed offsets",
                    generation_id,
                    stale,
                )
            await super().on_partitions_assigned(assigned, generation_id)

        def ack(self, message: Any) -> bool:
            if current_ack(self, message):
                return bool(super().ack(message))
            with ack_lock:  # done with, without a trace in the offsets
                message.acked = True
                self._unacked_messages.discard(message)
            log.warning(
                "not acknowledging %s offset %d: fetched under an earlier assignment; the partition is read from its "
                "committed offset now",
                message.tp,
                message.offset,
            )
            return False

    class Transport(faust_aiokafka.Transport):
        Consumer = ShortWaitConsumer

    Transport.commits = commits  # type: ignore[attr-defined]

    return Transport
