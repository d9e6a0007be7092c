"""The lock the live stack shares with moto's request threads (toolkit.local.motostate): what it holds, and who waits."""

from __future__ import annotations

import threading
import time

from toolkit.local import motostate
from toolkit.local.motostate import LOCK, SHARED, locked, read_moto


class App:
    """A moto service's Flask app: records whether another thread could take LOCK while it answered."""

    def __init__(self, service: str) -> None:
        self.service, self.free = service, None

    def __call__(self, environ, start_response):
        taker = threading.Thread(
            target=lambda: setattr(self, "free", LOCK.acquire(timeout=0.05) and (LOCK.release() or True))
        )
        taker.start()
        taker.join()
        return [b"answer"]


class Dispatcher:
    def __init__(self, app: App) -> None:
        self.app = app

    def get_application(self, environ):
        return self.app

    __call__ = locked(lambda self, environ, start_response: None)


def test_a_request_to_a_shared_service_holds_the_lock_and_others_do_not():
    for service, held in (
        ("ec2", True),
        ("elbv2", True),
        ("elb", True),  # Classic ELBs: the controller reads them, DescribeInstanceHealth reads its answers
        ("autoscaling", True),
        ("s3", True),
        ("sqs", False),
        ("logs", False),
    ):
        app = App(service)
        assert Dispatcher(app)({}, None) == [b"answer"]
        assert (service in SHARED, app.free) == (held, not held)


def test_a_read_waits_for_the_request_in_progress(monkeypatch):
    monkeypatch.setattr(motostate, "_read_moto", lambda: time.monotonic())
    LOCK.acquire()
    reading = threading.Thread(target=lambda: results.append(read_moto()))
    results: list[float] = []
    reading.start()
    time.sleep(0.2)
    released = time.monotonic()
    LOCK.release()
    reading.join(timeout=5)
    assert len(results) == 1 and results[0] >= released
