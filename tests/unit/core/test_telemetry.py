"""Structured logs, request ids and the OTLP endpoint, without services."""

from __future__ import annotations

import io
import json
import logging

import pytest

from meterline.core.telemetry import request_id
from meterline.core.telemetry.logs import configure_logging, get_logger
from meterline.core.telemetry.tracing import traces_url


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    root = logging.getLogger()
    # uvicorn's loggers as `meterline serve` configures them (serve_log_config: no handler of
    # their own, propagating to the root). A uvicorn started earlier in this process with
    # uvicorn's default config leaves "uvicorn" non-propagating, which hid its lines here.
    uvicorn = logging.getLogger("uvicorn")
    saved = (uvicorn.handlers[:], uvicorn.propagate)
    uvicorn.handlers, uvicorn.propagate = [], True
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        uvicorn.handlers, uvicorn.propagate = saved
        for handler in [h for h in root.handlers if getattr(h, "_meterline_structlog", False)]:
            root.removeHandler(handler)


def test_meterline_and_library_lines_are_one_json_object_each(json_lines):
    get_logger("meterline.test").info("loaded", rows=3)
    logging.getLogger("some.library").warning("retrying %s in %d s", "upload", 2)
    ours, theirs = json_lines()
    assert (ours["event"], ours["rows"], ours["level"], ours["logger"]) == (
        "loaded", 3, "info", "meterline.test",
    )  # fmt: skip
    assert (theirs["event"], theirs["level"], theirs["logger"]) == (
        "retrying upload in 2 s", "warning", "some.library",
    )  # fmt: skip
    assert ours["ts"].endswith("Z") and theirs["ts"].endswith("Z")


def test_secrets_are_redacted_in_every_line(json_lines):
    get_logger("meterline.test").info(
        "GET /dashboard?key=ml_live_secret1", header="Authorization: Bearer ml_live_secret2"
    )
    logging.getLogger("uvicorn.error").error("bad request /x?token=tok_secret3&page=2")
    text = json.dumps(json_lines())
    assert "ml_live_secret1" not in text and "ml_live_secret2" not in text
    assert "tok_secret3" not in text and "page=2" in text and "[redacted]" in text


def test_bound_request_id_is_on_every_line_of_the_request(json_lines):
    import structlog

    with structlog.contextvars.bound_contextvars(request_id="req-abc-12345"):
        get_logger("meterline.api").info("request")
        logging.getLogger("sqlalchemy.engine").warning("slow query")
    get_logger("meterline.api").info("after")
    inside_ours, inside_lib, after = json_lines()
    assert inside_ours["request_id"] == inside_lib["request_id"] == "req-abc-12345"
    assert "request_id" not in after


def test_configuring_twice_keeps_one_handler():
    configure_logging("json", stream=io.StringIO())
    configure_logging("console", stream=io.StringIO())
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_meterline_structlog", False)]
    assert len(ours) == 1
    root.removeHandler(ours[0])
    with pytest.raises(ValueError, match="log format must be one of"):
        configure_logging("xml")


@pytest.mark.parametrize(
    "given, kept",
    [
        ("abc-12345", True),
        ("0f2c6a3e-8d1b-4c55-9d7e-2b1f3c4d5e6f", True),
        ("trace:span.01_x", True),
        ("short", False),
        ("-starts-with-dash", False),
        ("has space in it", False),
        ("line\nbreak-12345", False),
        ('quote"12345678', False),
        ("x" * 129, False),
        ("", False),
        (None, False),
    ],
)
def test_request_id_is_kept_only_when_well_formed(given, kept):
    got = request_id.accept_or_new(given)
    assert (got == given) is kept
    if not kept:
        assert len(got) == 32 and got.isalnum()


def test_request_id_is_bound_for_the_block_only():
    assert request_id.current() is None
    with request_id.bound("req-00000001"):
        assert request_id.current() == "req-00000001"
    assert request_id.current() is None


@pytest.mark.parametrize(
    "endpoint, url",
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://otel.example/v1/traces", "https://otel.example/v1/traces"),
    ],
)
def test_traces_go_to_the_collectors_traces_path(endpoint, url):
    assert traces_url(endpoint) == url


def test_before_configuration_lines_reach_the_stdlib_logger_as_json():
    """In a Dagster run (or an application embedding the SDK) Meterline's formatter is not
    installed: a line still goes to the standard logger of its name, as one JSON string."""
    import subprocess
    import sys

    code = """
import json, logging
from meterline.core.telemetry.logs import get_logger
seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())
logging.getLogger("meterline").addHandler(Keep())
logging.getLogger("meterline").setLevel(logging.INFO)
get_logger("meterline.loader").info("loader batch", request_ids=["req-1234abcd"], key="?key=s3")
print(seen[0])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["event"] == "loader batch" and line["request_ids"] == ["req-1234abcd"]
    assert line["key"] == "?key=[redacted]"
