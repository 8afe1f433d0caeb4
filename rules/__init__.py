"""The rules engine: MQTT telemetry in, alarm transitions out (``examwatch rules``).

Nothing in this package is for other services: the alarm contract and its lifecycle are in the
domain package (``examwatch.alarm``, ``examwatch.store.lifecycle``).
"""
