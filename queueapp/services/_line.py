"""Places in line: the queue row's own counters (the caller holds its lock)."""

from __future__ import annotations

from ..models import Queue


def _save_counters(queue: Queue) -> None:
    Queue.objects.filter(pk=queue.pk).update(
        number_day=queue.number_day, last_number=queue.last_number,
        last_seq=queue.last_seq, first_seq=queue.first_seq,
    )


def _back_of_line(queue: Queue) -> int:
    queue.last_seq += 1
    return queue.last_seq


def _front_of_line(queue: Queue) -> int:
    # Below every seq ever handed out, so the ticket stands first in its priority.
    queue.first_seq -= 1
    return queue.first_seq
