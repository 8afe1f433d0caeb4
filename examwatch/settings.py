"""Settings: one TOML file (see ``config/examwatch.sample.toml``), with ``EXAMWATCH_…`` overrides.

Nested keys are overridden with a double underscore: ``EXAMWATCH_INFLUX__URL``. The file is
named by ``--config`` or ``EXAMWATCH_CONFIG``; without one, only defaults and the environment
apply. Outside demo mode a missing, short or demo secret is refused: demo credentials are
published in this repository and must never guard a real exam.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from examwatch.clock import WALL, Clock, DrillClock
from examwatch.datafile import DataFileError, format_loc

DEMO_SECRET = "examwatch-demo-secret-not-for-exams"  # noqa: S105 - the published demo value, refused in production


class Mode(StrEnum):
    PRODUCTION = "production"
    DEMO = "demo"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    tls: bool = Field(default=False, description="connect with TLS (then port is the TLS listener)")
    ca_file: Path | None = Field(default=None, description="CA bundle for the broker's certificate")
    keepalive_s: int = Field(default=30, ge=5, le=3600)


class InfluxSettings(_Section):
    url: str = "http://127.0.0.1:8086"
    database: str = Field(default="examwatch", pattern=r"^[A-Za-z0-9_-]+$")
    retention_policy: str = Field(default="", description="empty: the database's default policy")
    username: str = Field(default="", description="InfluxDB 1.x user")
    password: SecretStr = SecretStr("")
    token: SecretStr = Field(default=SecretStr(""), description="InfluxDB 2.x/3.x token (v1 API)")
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    create_database: bool = Field(default=True, description="CREATE DATABASE at start (1.x only)")


class IngestSettings(_Section):
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="points per InfluxDB write")
    batch_latency_ms: int = Field(default=200, ge=1, le=60_000, description="oldest point waits at most this")
    max_batches_in_flight: int = Field(default=4, ge=1, le=64, description="full batches queued for writing")
    spool_dir: Path = Field(default=Path("var/spool/ingest"), description="durable buffer while InfluxDB is down")
    session_expiry_s: int = Field(default=86_400, ge=60, description="broker keeps our queue this long offline")
    max_payload_bytes: int = Field(default=65_536, ge=256, le=1_048_576)
    max_clock_offset_s: int = Field(default=86_400, ge=1, description="refuse device timestamps further off")
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    stats_interval_s: float = Field(default=10.0, gt=0, description="self-metrics written to InfluxDB")


class BrokerSettings(_Section):
    """What ``examwatch broker-config`` writes into mosquitto.conf."""

    listen_host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    tls_port: int = Field(default=0, ge=0, le=65535, description="0 = no TLS listener")
    certfile: Path | None = None
    keyfile: Path | None = None
    cafile: Path | None = None
    data_dir: Path = Field(default=Path("var/mosquitto"), description="persistence and log")
    max_queued_messages: int = Field(default=1_000_000, ge=1000, description="per offline session")
    autosave_interval_s: int = Field(default=30, ge=1, description="persistence saved this often")
    user: str = Field(default="", description="run as this user (empty: mosquitto's default)")

    @model_validator(mode="after")
    def _tls_complete(self) -> Self:
        if self.tls_port and not (self.certfile and self.keyfile):
            raise ValueError("tls_port needs certfile and keyfile")
        return self


class StoreSettings(_Section):
    """The state store shared by rules, notifier and API (alarms, acknowledgements, timers, readiness)."""

    url: str = Field(
        default="sqlite:///var/examwatch.db",
        description="SQLAlchemy URL: sqlite:///path (WAL) or postgresql+psycopg://user@host/db",
    )


class RulesSettings(_Section):
    """The rules engine (``examwatch rules``)."""

    rules_dir: Path = Field(default=Path("config/rules"), description="one YAML rules file per device kind")
    worker: str = Field(default="1", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="client id rules-<id>")
    session_expiry_s: int = Field(default=86_400, ge=60, description="broker keeps our queue this long")
    receive_maximum: int = Field(default=10_000, ge=20, le=65_535, description="unacknowledged messages")
    commit_interval_ms: int = Field(
        default=50, ge=1, le=10_000, description="commit, then ack, this often (at once after a transition)"
    )
    tick_s: float = Field(default=1.0, gt=0, le=60, description="coverage and readiness run this often")
    restart_grace_s: float = Field(
        default=10.0, ge=0, le=3600, description="after a start, absence waits this long for the backlog"
    )
    silence_hold_s: float = Field(
        default=2.0, ge=0, le=60,
        description="wall seconds silence waits for a stream the engine has not read past (its own lag)",
    )


class NotifySettings(_Section):
    """The notifier: roster, message language, SMS provider, outbox retries, escalation."""

    roster: Path = Field(default=Path("config/roster.yaml"), description="duty roster: people, routes, labels")
    store_url: str = Field(
        default="sqlite:///var/notify.db",
        description="the notifier's own store (outbox, timers, silences, short codes, replies); "
        "empty: the shared [store] url",
    )
    link_ttl_s: float = Field(
        default=43_200.0, gt=0, le=7 * 86_400, description="an alert's link to the mobile page expires after this"
    )
    language: Literal["zh", "en"] = Field(default="zh", description="message language")
    timezone: str = Field(default="Asia/Shanghai", description="times in messages and active hours")
    provider: Literal["kannel", "apprise"] = Field(default="kannel", description="SMS gateway")
    kannel_url: str = Field(default="http://127.0.0.1:13013/cgi-bin/sendsms", description="Kannel smsbox sendsms")
    kannel_username: str = Field(default="", description="Kannel sendsms-user username")
    kannel_password: SecretStr = Field(default=SecretStr(""), description="Kannel sendsms-user password")
    kannel_from: str = Field(default="10690000", description="sender number shown on the phone")
    apprise_url: SecretStr = Field(
        default=SecretStr(""), description="Apprise URL with {phone} for the recipient, e.g. twilio://SID:TOKEN@FROM/{phone}"
    )
    send_timeout_s: float = Field(default=5.0, gt=0, le=120, description="one provider call")
    retry_min_s: float = Field(default=1.0, gt=0, le=600, description="first retry after a failed send")
    retry_max_s: float = Field(default=30.0, gt=0, le=3600, description="retries back off up to this")
    rate_per_phone: int = Field(default=10, ge=1, le=1000, description="messages per phone per rate_window_s")
    rate_window_s: float = Field(default=60.0, gt=0, le=86_400)
    escalate_severities: tuple[str, ...] = Field(default=("critical",), description="these remind and escalate")
    remind_every_s: float = Field(default=300.0, gt=0, description="reminder while unacknowledged (M)")
    escalate_after_s: float = Field(default=900.0, gt=0, description="next roster level if unacknowledged (N)")
    all_clear: bool = Field(default=True, description="send an all-clear when the alarm resolves")
    flood_threshold: int = Field(
        default=50, ge=2, le=100_000, description="this many alarms of one rule within flood_window_s: a flood"
    )
    flood_window_s: float = Field(default=60.0, gt=0, le=3600, description="the flood's window (clock seconds)")
    summary_delay_s: float = Field(
        default=10.0, ge=0, le=600, description="a flood's summary waits this long for the rest of the burst"
    )
    robot_rate_per_min: int = Field(
        default=20, ge=1, le=1000, description="messages per group-chat robot per minute (DingTalk, WeCom: 20)"
    )
    delivery_reports: bool = Field(
        default=True, description="ask Kannel for delivery reports to the API's /sms/dlr (exactly once across a crash)"
    )
    dlr_wait_s: float = Field(
        default=5.0, ge=0, le=300, description="after a crash, wait this long for the report of the SMS in flight"
    )
    worker: str = Field(default="1", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="MQTT client id notify-<worker>")
    state_dir: Path = Field(default=Path("var/notify"), description="the message being sent, per worker")
    session_expiry_s: int = Field(default=86_400, ge=60, description="broker keeps our queue this long offline")
    receive_maximum: int = Field(default=1000, ge=20, le=65_535, description="unacknowledged transitions in flight")
class ApiSettings(_Section):
    """The command-center API (``examwatch api serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    offline_after_s: int = Field(default=300, ge=5, le=86_400, description="a device silent this long is offline")
    lookback_h: int = Field(default=24, ge=1, le=24 * 366, description="last seen is searched this far back")
    status_cache_s: float = Field(
        default=5.0, ge=0, le=60, description="device states read from InfluxDB are reused this long"
    )
    sse_poll_ms: int = Field(default=250, ge=10, le=10_000, description="the event stream looks for news this often")
    drills_dir: Path = Field(default=Path("var/drills"), description="drill logs and JSON reports")
    scenarios_dir: Path = Field(default=Path("config/scenarios"), description="drill scenarios that may be started")
    drill_command: list[str] = Field(
        default_factory=list, description="command that runs a scenario; empty: this examwatch's `drill run`"
    )
    access_log: bool = Field(default=False, description="uvicorn logs every request")
    reload_wait_s: float = Field(
        default=5.0, ge=0.1, le=60, description="after saving rules or the roster, wait this long for an answer"
    )
    public_url: str = Field(
        default="", description="the API as phones reach it (links in alert SMS); empty: alerts carry no link"
    )
    callback_url: str = Field(
        default="", description="the API as the SMS gateway (Kannel) reaches it; empty: http://{host}:{port}"
    )
    page_guesses: int = Field(
        default=20, ge=1, le=10_000, description="refused mobile-page tokens per client address per page_guess_window_s"
    )
    page_guess_window_s: float = Field(default=600.0, gt=0, le=86_400, description="window of page_guesses")


class ClockSettings(_Section):
    """The clock every service judges by (``examwatch.clock``). Unset: real time.

    A compressed drill sets ``start`` (the simulated moment, e.g. the exam day's 07:20), ``wall_start``
    (when, in real time, that moment is) and ``speed``; every service of the drill's stack reads the
    same values, so they all agree on what time it is. Before ``wall_start`` the clock stands at ``start``.
    """

    speed: float = Field(default=1.0, gt=0, le=1000, description="clock seconds per real second")
    start: AwareDatetime | None = Field(default=None, description="the clock's time at wall_start")
    wall_start: AwareDatetime | None = Field(default=None, description="real time at which the clock reads start")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if (self.start is None) != (self.wall_start is None):
            raise ValueError("a drill clock needs both start and wall_start")
        if self.speed != 1.0 and self.start is None:
            raise ValueError("speed other than 1 needs start and wall_start (a drill clock)")
        return self

    def make(self) -> Clock:
        """The wall clock, or the drill clock these settings describe."""
        if self.start is None or self.wall_start is None:
            return WALL
        return DrillClock(self.start.timestamp(), self.wall_start.timestamp(), self.speed)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EXAMWATCH_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    mode: Mode = Mode.PRODUCTION
    secret: SecretStr = Field(
        default=SecretStr(""),
        description="master key from which every MQTT password is derived (HMAC); ≥ 16 characters",
    )
    inventory: Path = Path("config/district.yaml")
    timetable: Path = Path("config/timetable.yaml")
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ingest: IngestSettings = IngestSettings()
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    rules: RulesSettings = RulesSettings()
    notify: NotifySettings = NotifySettings()
    api: ApiSettings = ApiSettings()
    clock: ClockSettings = ClockSettings()

    @property
    def notify_store_url(self) -> str:
        """Where the notifier keeps its outbox: its own store, or the shared one."""
        return self.notify.store_url or self.store.url

    @model_validator(mode="after")
    def _secrets_fit_mode(self) -> Self:
        secret = self.secret.get_secret_value()
        if self.mode is Mode.DEMO:
            if not secret:
                self.secret = SecretStr(DEMO_SECRET)
            return self
        if not secret:
            raise ValueError('secret is not set (set EXAMWATCH_SECRET, or mode = "demo" for the demo)')
        if secret == DEMO_SECRET:
            raise ValueError('secret is the published demo secret, refused outside mode = "demo"')
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 characters")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, which wins over defaults.
        return env_settings, init_settings


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``path`` (or ``EXAMWATCH_CONFIG``) and the environment.

    Raises DataFileError with one line per problem, naming the file and the field.
    """
    if path is None and os.environ.get("EXAMWATCH_CONFIG"):
        path = Path(os.environ["EXAMWATCH_CONFIG"])
    data: dict[str, Any] = {}
    source = "settings"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileError(f"{path}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(f"{path}: not valid TOML: {exc}") from None
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = [f"{source}: {format_loc(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise DataFileError("\n".join(problems)) from None
