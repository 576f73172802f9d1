"""Input of the pages. Each form names the field and the reason when it refuses."""

from __future__ import annotations

from django import forms


class JoinForm(forms.Form):
    """Kiosk and online join: which service."""

    queue = forms.IntegerField(min_value=1, error_messages={
        "required": "Choose a service.", "invalid": "Choose one of the services listed."})

    def __init__(self, *args, queues=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.queues = {q.pk: q for q in queues}

    def clean_queue(self):
        queue = self.queues.get(self.cleaned_data["queue"])
        if queue is None:
            raise forms.ValidationError("Choose one of the services listed.")
        return queue


class ConsoleActionForm(forms.Form):
    """One form for every console button: `action` says which was pressed."""

    ACTIONS = [
        ("call_next", "Call next"), ("recall", "Recall"), ("start", "Start"),
        ("complete", "Complete"), ("no_show", "No-show"), ("transfer", "Transfer"),
        ("call", "Call"), ("pause", "Pause"), ("resume", "Resume"),
    ]
    NEEDS_TICKET = {"recall", "start", "complete", "no_show", "transfer", "call"}
    NEEDS_QUEUE = {"transfer", "pause", "resume"}

    action = forms.ChoiceField(choices=ACTIONS, error_messages={
        "required": "Say which action to take.",
        "invalid_choice": "%(value)s is not an action of the console."})
    ticket = forms.IntegerField(min_value=1, required=False,
                                error_messages={"invalid": "The ticket must be given by its id."})
    queue = forms.IntegerField(min_value=1, required=False,
                               error_messages={"invalid": "Choose a queue from the list."})

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action in self.NEEDS_TICKET and not data.get("ticket"):
            self.add_error("ticket", "This action needs a ticket.")
        if action in self.NEEDS_QUEUE and not data.get("queue"):
            self.add_error("queue", "Choose a queue for this action." if action == "transfer"
                           else "Say which queue to pause or resume.")
        return data

    def error_text(self) -> str:
        """All errors as one sentence per field, for an inline message."""
        return " ".join(str(e) for errors in self.errors.values() for e in errors)
