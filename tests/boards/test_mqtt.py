"""serve over MQTT against a real mosquitto broker on loopback (the ``mosquitto`` fixture):
inputs on PREFIX/in, outputs on PREFIX/out, counters on PREFIX/status; hostile messages
counted; learning only over an authenticated connection; TLS verified."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import neuroplast
from neuroplast.boards.frames import encode_payload
from neuroplast.boards.mqtt import MqttOptions, parse_mqtt_url
from neuroplast.boards.stream import serve
from neuroplast.errors import BoardError

pytestmark = pytest.mark.timeout(120)

mqtt = pytest.importorskip("paho.mqtt.client")


class Peer:
    """A paho client on the broker: publishes inputs, collects PREFIX/out and PREFIX/status."""

    def __init__(self, port: int, prefix: str, **login) -> None:
        self.prefix, self.outs, self.status = prefix, [], []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if login:
            self.c.username_pw_set(login["user"], login["password"])
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe([(f"{prefix}/out", 1), (f"{prefix}/status", 1)])
        assert subscribed.wait(10)

    def _on_message(self, _c, _u, msg) -> None:
        (self.outs if msg.topic.endswith("/out") else self.status).append(json.loads(msg.payload))

    def wait_outs(self, n: int, timeout: float = 10.0) -> list:
        """The outputs, once ``n`` arrived (QoS 0 publishes may trail serve's exit)."""
        deadline = time.monotonic() + timeout
        while len(self.outs) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.outs

    def send(self, payload: bytes) -> None:
        self.c.publish(f"{self.prefix}/in", payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _serve_thread(bundle: Path, url: str, **kw):
    res, ready, stop = {}, threading.Event(), threading.Event()
    kw.setdefault("log", lambda m: None)
    kw.setdefault("guard", False)  # teaching counts below: no held-out messages

    def run() -> None:
        try:
            res["st"] = serve(bundle, url, out=io.StringIO(), ready=ready, stop=stop, **kw)
        except BaseException as e:  # noqa: BLE001
            res["err"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, ready, stop, res


def _finish(th, stop, res, timeout=30.0):
    th.join(timeout)
    stop.set()
    th.join(10)
    assert not th.is_alive()
    if "err" in res:
        raise res["err"]
    return res["st"]


def test_mqtt_inference_hostile_messages_and_no_anonymous_learning(
    mosquitto, plastic_bundle, tmp_path
):
    w0 = neuroplast.load(plastic_bundle).params["fc"]["weight"].copy()
    url = f"mqtt://127.0.0.1:{mosquitto.port}/dev1"
    th, ready, stop, res = _serve_thread(plastic_bundle, url, max_steps=6,
                                         state_dir=tmp_path / "st", status_every_s=0.2)  # fmt: skip
    assert ready.wait(20)
    peer = Peer(mosquitto.port, "dev1")
    xs = np.random.default_rng(11).random((6, 16), dtype=np.float32)
    hostile = [b"", b"garbage", b"\x00" * 63, np.full(16, np.inf, "<f4").tobytes(),
               encode_payload(xs[0], "text"), b"NPA1" * 100]  # fmt: skip
    for h, x in zip(hostile, xs):
        peer.send(h)
        peer.send(encode_payload(x * 40, "f32"))  # strong input: would teach if allowed
    st = _finish(th, stop, res)
    outs = peer.wait_outs(6)
    deadline = time.monotonic() + 10
    while not (peer.status and peer.status[-1]["online"] is False) and time.monotonic() < deadline:
        time.sleep(0.02)  # the final retained status reaches the peer
    peer.close()
    c = st.counters
    assert st.steps == 6 and c["learned"] == 0 and c["inference_only"] == 6
    assert c["rejected"] == 6 and c["reasons"] == {"format": 5, "value": 1}
    assert c["received"] == c["processed"] + c["rejected"] + c["dropped"] + c["pending"]
    _, ref = _reference_outputs(plastic_bundle, xs * 40)
    np.testing.assert_array_equal(np.array([o["output"] for o in outs]), ref)
    final = peer.status[-1]
    assert final["online"] is False and final["processed"] == 6 and final["rejected"] == 6
    with np.load(tmp_path / "st" / "state.npz") as z:
        np.testing.assert_array_equal(z["param/fc/weight"], w0)


def _reference_outputs(bundle: Path, xs: np.ndarray, learn: bool = False):
    rt = neuroplast.load(bundle)
    rt.learn(learn)
    return rt, np.stack([rt.step(x) for x in xs])


def test_mqtt_password_login_teaches_and_bad_login_is_refused(mosquitto, plastic_bundle, tmp_path):
    url = f"mqtt://127.0.0.1:{mosquitto.auth_port}/dev2"
    bad = tmp_path / "bad"
    bad.write_text("wrong\n")
    with pytest.raises(BoardError, match="MQTT broker refused the connection"):
        serve(plastic_bundle, url, out=io.StringIO(), log=lambda m: None,
              mqtt=MqttOptions(username=mosquitto.user, password_file=str(bad)))  # fmt: skip
    with pytest.raises(BoardError, match="refused"):
        serve(plastic_bundle, url, out=io.StringIO(), log=lambda m: None)  # anonymous

    opts = MqttOptions(username=mosquitto.user, password_file=str(mosquitto.password_file))
    th, ready, stop, res = _serve_thread(plastic_bundle, url, max_steps=4, mqtt=opts,
                                         state_dir=tmp_path / "st")  # fmt: skip
    assert ready.wait(20)
    peer = Peer(mosquitto.auth_port, "dev2", user=mosquitto.user,
                password=mosquitto.password_file.read_text().strip())  # fmt: skip
    xs = np.random.default_rng(12).random((4, 16), dtype=np.float32)
    for x in xs:
        peer.send(encode_payload(x, "f32"))
    st = _finish(th, stop, res)
    outs = peer.wait_outs(4)
    peer.close()
    assert st.steps == 4 and st.counters["learned"] == 4
    ref_rt, ref = _reference_outputs(plastic_bundle, xs, learn=True)
    np.testing.assert_array_equal(np.array([o["output"] for o in outs]), ref)
    with np.load(tmp_path / "st" / "state.npz") as z:
        np.testing.assert_array_equal(z["param/fc/weight"], ref_rt.params["fc"]["weight"])


def test_mqtts_verifies_the_broker(mosquitto, small_bundle):
    url = f"mqtts://127.0.0.1:{mosquitto.tls_port}/dev3"
    login = dict(username=mosquitto.user, password_file=str(mosquitto.password_file))
    with pytest.raises(BoardError, match="cannot connect to the MQTT broker.*certificate"):
        serve(small_bundle, url, out=io.StringIO(), mqtt=MqttOptions(**login))  # system CAs
    th, ready, stop, res = _serve_thread(
        small_bundle,
        url,
        learn=False,
        max_steps=1,
        mqtt=MqttOptions(ca_file=str(mosquitto.ca), **login),
    )
    assert ready.wait(20)
    import ssl

    peer_c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    peer_c.tls_set(ca_certs=str(mosquitto.ca), cert_reqs=ssl.CERT_REQUIRED)
    peer_c.username_pw_set(mosquitto.user, mosquitto.password_file.read_text().strip())
    peer_c.connect("127.0.0.1", mosquitto.tls_port)
    peer_c.loop_start()
    x = np.random.default_rng(13).random(16, dtype=np.float32)
    peer_c.publish("dev3/in", encode_payload(x, "f32"), qos=1).wait_for_publish(10)
    st = _finish(th, stop, res)
    peer_c.disconnect()
    peer_c.loop_stop()
    assert st.steps == 1


def test_mqtt_url_rules():
    assert parse_mqtt_url("mqtt://127.0.0.1:1884/a/b").prefix == "a/b"
    assert parse_mqtt_url("mqtts://broker.example:8883/x").tls
    with pytest.raises(BoardError, match="plain MQTT to non-loopback"):
        parse_mqtt_url("mqtt://192.0.2.7/dev")
    with pytest.raises(BoardError, match="not the URL"):
        parse_mqtt_url("mqtt://u:pw@127.0.0.1/dev")
    with pytest.raises(BoardError, match="without wildcards"):
        parse_mqtt_url("mqtt://127.0.0.1/dev/#")
