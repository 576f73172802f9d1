"""Typed errors every service raises. Each carries a message a person understands
and the HTTP status the API and views answer with.

They sit below the services and the live package (access checks raise them, the
live screens catch them), so neither has to import the other.
"""

__all__ = ["QueueActionError", "InvalidInput", "NotFound", "PermissionDenied", "QueuePaused",
           "QueueFull", "CounterBusy", "InvalidTransition", "NothingWaiting", "OfferExpired", "DatePassed",
           "SlotFull", "CheckInNotOpen",
           "CounterNotOpen", "CounterHoldsTicket"]


class QueueActionError(Exception):
    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(QueueActionError):
    status_code = 400
    code = "invalid"


class NotFound(QueueActionError):
    status_code = 404
    code = "not_found"


class PermissionDenied(QueueActionError):
    status_code = 403
    code = "forbidden"


class QueuePaused(QueueActionError):
    code = "queue_paused"


class QueueFull(QueueActionError):
    code = "queue_full"


class CounterBusy(QueueActionError):
    code = "counter_busy"


class InvalidTransition(QueueActionError):
    code = "invalid_transition"


class NothingWaiting(QueueActionError):
    code = "nothing_waiting"


class OfferExpired(QueueActionError):
    code = "offer_expired"


class DatePassed(QueueActionError):
    code = "date_passed"


class SlotFull(QueueActionError):
    """Every place of a booking slot is taken (the last one may just have gone)."""

    code = "slot_full"


class CheckInNotOpen(QueueActionError):
    """A booking's check-in window has not opened yet."""

    code = "check_in_not_open"


class CounterNotOpen(QueueActionError):
    """The counter is on a break or closed: it calls nobody."""

    code = "counter_not_open"


class CounterHoldsTicket(QueueActionError):
    """Closing (or pausing) a counter that holds a ticket needs a decision about it."""

    code = "counter_holds_ticket"
