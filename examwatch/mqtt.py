"""Connecting to the broker the way every examwatch client must: MQTT v5, authenticated, TLS when set."""

from __future__ import annotations

import ssl
import threading
from typing import Any, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from examwatch import credentials
from examwatch.settings import MqttSettings, Settings


def client(
    cfg: MqttSettings,
    client_id: str,
    username: str,
    password: str,
    *,
    manual_ack: bool = False,
) -> paho.Client:
    """A configured, unconnected MQTT v5 client."""
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    c.username_pw_set(username, password)
    if cfg.tls:
        c.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
    return c


def service_client(settings: Settings, service: str, client_id: str, *, manual_ack: bool = False) -> paho.Client:
    """A client of ``service`` (user ``svc-<service>``, its password derived from the secret)."""
    user = credentials.service_user(service)
    return client(settings.mqtt, client_id, user, credentials.password(settings.secret.get_secret_value(), user),
                  manual_ack=manual_ack)


def connect_properties(*, session_expiry_s: int = 0, receive_maximum: int = 0) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


class ConnectRefused(Exception):
    """The broker refused us (bad credentials, not authorised) or could not be reached."""


def connect_and_wait(
    c: paho.Client, cfg: MqttSettings, *, clean_start: bool = False, timeout_s: float = 10.0, **props: int
) -> paho.ConnectFlags:
    """Connect, start the network thread, and wait for CONNACK; raise ConnectRefused on failure.

    paho retries by itself after a later disconnect; only the first connection is waited for.
    """
    done = threading.Event()
    result: dict[str, object] = {}
    previous = c.on_connect

    def on_connect(cl: paho.Client, userdata: object, flags: paho.ConnectFlags, rc: object, p: object) -> None:
        result["flags"], result["rc"] = flags, rc
        done.set()
        if previous is not None:
            cast(Any, previous)(cl, userdata, flags, rc, p)
        c.on_connect = previous

    c.on_connect = on_connect
    try:
        c.connect(
            cfg.host,
            cfg.port,
            keepalive=cfg.keepalive_s,
            clean_start=clean_start,
            properties=connect_properties(**props),
        )
    except OSError as exc:
        raise ConnectRefused(f"broker {cfg.host}:{cfg.port}: {exc}") from exc
    c.loop_start()
    if not done.wait(timeout_s):
        c.loop_stop()
        raise ConnectRefused(f"broker {cfg.host}:{cfg.port}: no CONNACK within {timeout_s:.0f} s")
    rc = result["rc"]
    if getattr(rc, "is_failure", False):
        c.loop_stop()
        raise ConnectRefused(f"broker {cfg.host}:{cfg.port} refused the connection: {rc}")
    flags = result["flags"]
    assert isinstance(flags, paho.ConnectFlags)
    return flags
