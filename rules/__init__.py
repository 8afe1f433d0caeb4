"""The rules engine and the alarm lifecycle.

The API calls the lifecycle's public functions re-exported here; nothing else in this package
is for other services.
"""

from rules.lifecycle import AlarmError, AlarmView, TransitionView, acknowledge, history, list_alarms, resolve

__all__ = ["AlarmError", "AlarmView", "TransitionView", "acknowledge", "history", "list_alarms", "resolve"]
