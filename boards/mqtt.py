"""MQTT for ``serve`` (paho-mqtt, MQTT 5): inputs from a topic, outputs and counters to topics.

``mqtt://HOST:PORT/PREFIX`` (plain TCP; ``HOST`` must be a loopback address unless
remote is allowed) or ``mqtts://HOST:PORT/PREFIX`` (TLS, the broker's certificate verified
against ``ca_file`` or the system store). Topics::

    PREFIX/in       inputs (one step per message; see neuroplast.boards.frames)
    PREFIX/out      outputs, one JSON record per step
    PREFIX/status   counters as JSON, retained; {"online": false} as the last will

The password comes from a file or the ``NEUROPLAST_MQTT_PASSWORD`` environment variable,
never from the command line (other users can read process arguments). The client asks
the broker for a maximum packet size (MQTT 5), so no single message can take more than
``max_packet`` bytes of memory here; larger ones are dropped by the broker.

A connection counts as *authenticated* when it logs in with a username or presents a
client certificate: the broker then decides who may publish on ``PREFIX/in`` (its ACL).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from neuroplast.errors import BoardError

__all__ = ["MqttOptions", "MqttLink", "parse_mqtt_url", "PASSWORD_ENV"]

PASSWORD_ENV = "NEUROPLAST_MQTT_PASSWORD"


@dataclass(frozen=True)
class MqttOptions:
    """Connection settings besides the URL. ``password_file``: a file holding the password
    (else ``$NEUROPLAST_MQTT_PASSWORD``); ``ca_file``/``cert_file``/``key_file``: TLS."""

    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    qos: int = 1
    keepalive: int = 30
    connect_timeout: float = 10.0
    max_packet: int = 1 << 20


@dataclass(frozen=True)
class _Url:
    host: str
    port: int
    prefix: str
    tls: bool
    username: str | None


def parse_mqtt_url(url: str, allow_remote: bool = False) -> _Url:
    """Split ``mqtt[s]://[user@]HOST[:PORT]/PREFIX``; plain MQTT only to loopback unless
    ``allow_remote`` (credentials and data would cross the network unencrypted)."""
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts"):
        raise BoardError(f"{url}: MQTT source must start with mqtt:// or mqtts://")
    if u.password is not None:
        raise BoardError(f"{url}: put the MQTT password in a file or ${PASSWORD_ENV}, not the URL")
    host = u.hostname or "127.0.0.1"
    tls = u.scheme == "mqtts"
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise BoardError(f"{url}: bad port") from None
    prefix = u.path.strip("/")
    if not prefix or u.query or "#" in url or any(c in prefix for c in "+\0"):
        raise BoardError(f"{url}: needs a topic prefix without wildcards, e.g. mqtt://HOST/dev1")
    if not tls and not allow_remote:
        try:
            loop = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError) as e:
            raise BoardError(f"{url}: cannot resolve {host} ({e})") from None
        if not loop:
            raise BoardError(
                f"{url}: plain MQTT to non-loopback {host}; use mqtts:// (TLS) or allow_remote"
            )
    return _Url(host, port, prefix, tls, unquote(u.username) if u.username else None)


def _password(opts: MqttOptions) -> str | None:
    if opts.password_file:
        try:
            return Path(opts.password_file).read_text().rstrip("\r\n")
        except OSError as e:
            raise BoardError(
                f"{opts.password_file}: cannot read the MQTT password ({e.strerror})"
            ) from None
    return os.environ.get(PASSWORD_ENV)


class MqttLink:
    """A connected paho client: ``on_payload(bytes)`` is called from paho's network thread
    for every message on ``PREFIX/in``; :meth:`publish_output` / :meth:`publish_status`."""

    def __init__(
        self,
        url: str,
        opts: MqttOptions,
        on_payload: Callable[[bytes], None],
        *,
        allow_remote: bool = False,
        log: Callable[[str], None] = print,
    ) -> None:
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
        except ImportError as e:
            raise BoardError("MQTT sources need paho-mqtt: pip install 'neuroplast[mqtt]'") from e
        u = parse_mqtt_url(url, allow_remote)
        self.url, self.opts, self.log = url, opts, log
        self.topic_in, self.topic_out = f"{u.prefix}/in", f"{u.prefix}/out"
        self.topic_status = f"{u.prefix}/status"
        user = opts.username or u.username
        self.authenticated = bool(user) or bool(opts.cert_file)
        c = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=opts.client_id or f"neuroplast-serve-{os.getpid()}",
            protocol=mqtt.MQTTv5,
        )
        if user:
            c.username_pw_set(user, _password(opts))
        if u.tls:
            try:
                c.tls_set(ca_certs=opts.ca_file, certfile=opts.cert_file, keyfile=opts.key_file)
            except (OSError, ValueError) as e:
                raise BoardError(f"{url}: bad TLS files ({e})") from None
        elif opts.cert_file or opts.ca_file:
            raise BoardError(f"{url}: TLS files given for plain mqtt://; use mqtts://")
        c.will_set(self.topic_status, json.dumps({"online": False}), qos=1, retain=True)
        c.reconnect_delay_set(1, 30)
        self._subscribed = threading.Event()
        self._refused: str | None = None

        def on_connect(client: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
            if rc.is_failure:
                self._refused = str(rc)
                self._subscribed.set()
                return
            if self._subscribed.is_set():
                log(f"MQTT reconnected to {u.host}:{u.port}")
            client.subscribe(self.topic_in, qos=opts.qos)

        def on_subscribe(_c: Any, _u: Any, _mid: Any, codes: Any, _p: Any = None) -> None:
            bad = [str(rc) for rc in codes if rc.is_failure]
            if bad and not self._subscribed.is_set():
                self._refused = f"subscribing to {self.topic_in}: {bad[0]}"
            self._subscribed.set()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            on_payload(bytes(msg.payload))

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        props = Properties(PacketTypes.CONNECT)
        props.MaximumPacketSize = int(opts.max_packet)
        try:
            c.connect(u.host, u.port, keepalive=opts.keepalive, properties=props)
        except (OSError, ValueError) as e:  # refused, unreachable, TLS handshake/verification
            raise BoardError(f"{url}: cannot connect to the MQTT broker ({e})") from None
        c.loop_start()
        self.client = c
        if not self._subscribed.wait(opts.connect_timeout) or self._refused:
            self.close()
            why = self._refused or f"no answer in {opts.connect_timeout:g} s"
            raise BoardError(f"{url}: MQTT broker refused the connection ({why})")

    def publish_output(self, record: dict) -> None:
        self.client.publish(self.topic_out, json.dumps(record), qos=0)

    def publish_status(self, counters: dict, online: bool = True, wait: float = 0.0) -> None:
        """Counters on ``PREFIX/status`` (retained); ``wait`` s for the broker's ack."""
        body = json.dumps({"online": online, **counters})
        info = self.client.publish(self.topic_status, body, qos=1, retain=True)
        if wait > 0:
            try:
                info.wait_for_publish(wait)
            except (RuntimeError, ValueError):  # not connected right now: the will covers it
                pass

    def close(self) -> None:
        c = getattr(self, "client", None)
        if c is None:
            return
        try:
            c.disconnect()
        finally:
            c.loop_stop()
            self.client = None
