"""Shared fixtures of the SDK conformance suite (run by tests/sdk_conformance.rs).

The emulators' URLs come from the environment (FRONTDESK_*_URL, set by the Rust harness from
`frontdesk emulators --json`). `force(url, kind, scope)` makes the next connection/request (or,
with scope="stream", the next stream inside a connection) get a fault; `injected(url)` returns
the emulator's fault counts by kind.
"""

import json
import os
import urllib.request

import pytest


def _url(var):
    value = os.environ.get(var)
    if not value:
        pytest.fail(f"{var} is not set: run this suite through `cargo test --test sdk_conformance`")
    return value


def _http(url):
    # Websocket emulators serve their control routes on the same port over plain HTTP.
    return url.replace("ws://", "http://", 1).rstrip("/")


def force(url, kind, scope="connection"):
    body = json.dumps({"kind": kind, "scope": scope}).encode()
    req = urllib.request.Request(
        _http(url) + "/_emulator/faults/next",
        data=body,
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 204, resp.status


def injected(url):
    with urllib.request.urlopen(_http(url) + "/_emulator/faults", timeout=5) as resp:
        return json.load(resp)["injected"]


@pytest.fixture(scope="session")
def openai_url():
    return _url("FRONTDESK_OPENAI_URL")


@pytest.fixture(scope="session")
def deepgram_url():
    return _url("FRONTDESK_DEEPGRAM_URL")


@pytest.fixture(scope="session")
def cartesia_url():
    return _url("FRONTDESK_CARTESIA_URL")
