"""MQTT → validated points → InfluxDB.

Stages, each behind a small interface: the MQTT source (``source``) hands raw messages to the
decoder (``decode``: validate and enrich into line protocol, or a rejection record), the batcher
(``batch``) groups them by size and age, and the writer (``writer``) makes each batch durable in
InfluxDB or the on-disk spool (``spool``) before the broker is acknowledged.
"""
