"""Actions on a queue as a whole."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Queue, QueueEvent
from ._events import record_event
from ._locks import lock_queue
from ..errors import InvalidTransition
from .waitlist import admit_locked


def _pk(obj) -> int:
    return obj if isinstance(obj, int) else obj.pk


@transaction.atomic(durable=True)
def do_pause(queue: Queue | int, *, acting_user=None) -> Queue:
    """Stop joins and calls on a queue. Locks the queue row."""
    queue = lock_queue(_pk(queue))
    if queue.is_paused:
        raise InvalidTransition(_("%(queue)s is already paused.") % {"queue": queue.name})
    queue.is_paused = True
    Queue.objects.filter(pk=queue.pk).update(is_paused=True)
    record_event(queue, QueueEvent.Kind.PAUSED, actor=acting_user)
    return queue


@transaction.atomic(durable=True)
def do_resume(queue: Queue | int, *, acting_user=None) -> Queue:
    """Take joins and calls again. Locks the queue row."""
    queue = lock_queue(_pk(queue))
    if not queue.is_paused:
        raise InvalidTransition(_("%(queue)s is not paused.") % {"queue": queue.name})
    queue.is_paused = False
    Queue.objects.filter(pk=queue.pk).update(is_paused=False)
    record_event(queue, QueueEvent.Kind.RESUMED, actor=acting_user)
    # A paused waitlist admits nobody; seats freed meanwhile go out now.
    admit_locked(queue, acting_user=acting_user)
    return queue
