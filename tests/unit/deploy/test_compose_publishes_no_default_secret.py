"""docker-compose.yml: no secret has a default value (compose refuses to start without the
required ones, `${VAR:?message}`), and nothing is published beyond loopback. Parsed with PyYAML
(no Compose JSON schema or `docker compose` is available offline here, so the file's shape is
checked by these assertions only)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from meterline.core.settings import documentation

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"
REQUIRED = {
    "METERLINE_ADMIN_KEY",
    "METERLINE_SECRET_KEY",
    "ALERT_WEBHOOK_SECRET",
    "POSTGRES_PASSWORD",
}
SUBSTITUTION = re.compile(r"\$\{(?P<name>\w+)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _environments(compose: dict):
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        yield name, env


def test_every_required_secret_must_be_given_and_no_secret_has_a_default():
    compose = _compose()
    secret_variables = {n for n, doc in documentation().items() if doc.get("secret")} | REQUIRED
    required_seen = set()
    for service, env in _environments(compose):
        for variable, value in env.items():
            text = str(value)
            uses = list(SUBSTITUTION.finditer(text))
            for use in uses:
                if use["name"] in REQUIRED:
                    assert use["op"] == ":?", f"{service}: {use['name']} must use ${{...:?...}}"
                    required_seen.add(use["name"])
                elif use["name"] in secret_variables and use["op"] in (":-", "-"):
                    assert use["arg"] == "", f"{service}: {use['name']} has a default value"
            if variable in secret_variables | {"DATABASE_URL"}:
                literal = SUBSTITUTION.sub("", text)
                assert not re.search(r"://[^/@\s]*:[^/@\s]+@", literal), f"{service}: {variable}"
                # a URL without a password may be literal (redis://redis:6379/0); a key may not
                assert "://" in literal or not literal, f"{service}: {variable} is a literal"
    assert required_seen == REQUIRED
    assert "change-me" not in COMPOSE.read_text()


def test_ports_are_published_on_loopback_only():
    published = [
        (name, str(port)) for name, service in _compose()["services"].items()
        for port in service.get("ports", [])
    ]  # fmt: skip
    assert published, "the API and the Dagster UI are published"
    for name, port in published:
        assert port.startswith("127.0.0.1:") and port.count(":") == 2, (name, port)


def test_no_service_listens_on_all_interfaces_of_the_host():
    for name, service in _compose()["services"].items():
        assert service.get("network_mode") != "host", name
