"""Every write to queues and tickets goes through a `do_*` function here."""

from ..errors import (  # noqa: F401
    CounterBusy,
    DatePassed,
    InvalidInput,
    InvalidTransition,
    NothingWaiting,
    NotFound,
    OfferExpired,
    PermissionDenied,
    QueueActionError,
    QueueFull,
    QueuePaused,
    SlotFull,
    CheckInNotOpen,
    CounterHoldsTicket,
    CounterNotOpen,
)
from .counters import do_set_counter_state  # noqa: F401
from .preferences import do_set_staff_language, do_set_ticket_language  # noqa: F401
from .queues import do_pause, do_resume  # noqa: F401
from .tickets import (  # noqa: F401
    do_call_next,
    do_call_ticket,
    do_cancel,
    do_complete,
    do_join,
    do_no_show,
    do_recall,
    do_start_serving,
    do_transfer,
)
from .waitlist import (  # noqa: F401
    do_accept_offer,
    do_admit_request,
    do_move_to_front,
    do_confirm_waitlist,
    do_decline_offer,
    do_expire_offers,
    do_expire_past_requests,
    do_set_capacity,
    run_waitlist_cycles,
)
from .retention import do_purge_location, purge_due_locations  # noqa: F401
from .bookings import (  # noqa: F401
    do_book,
    do_cancel_booking,
    do_check_in,
    do_mark_missed_bookings,
    do_move_booking,
)
from .feedback import do_give_feedback  # noqa: F401
from ._join_async import do_join_in_loop, joins_in_loop  # noqa: F401
