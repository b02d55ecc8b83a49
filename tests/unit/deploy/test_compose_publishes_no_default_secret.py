"""docker-compose.yml: no secret has a default value (compose refuses to start without the
required ones, `${VAR:?message}`), and nothing is published beyond loopback. Parsed with PyYAML
(no Compose JSON schema or `docker compose` is available offline here, so the file's shape is
checked by these assertions only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
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


# -- interpolation and health --------------------------------------------------------------
from tests.compose import (  # noqa: E402
    MissingVariable,
    interpolate,
    load_compose,
    required_variables,
    service_environment,
)

TEST_SECRETS = {name: f"test-{name.lower()}" for name in REQUIRED}
LONG_RUNNING = ("postgres", "redis", "dagster-webserver", "dagster-daemon", "api")


def test_interpolation_follows_the_compose_specification():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} ${UNSET-d}", env) == "x d d  d"
    assert interpolate("$SET ${SET} $$SET ${EMPTY:+r} ${SET:+r} ${EMPTY+r}", env) == "x x $SET  r r"
    assert interpolate("${SET:?need it}", env) == "x"
    for text in ("${EMPTY:?need it}", "${UNSET:?need it}", "${UNSET?need it}"):
        with pytest.raises(MissingVariable, match="need it"):
            interpolate(text, env)
    assert interpolate("${EMPTY?need it}", env) == ""


def test_the_required_variables_are_the_secrets():
    assert required_variables() == REQUIRED


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_required_variable(missing):
    env = {k: v for k, v in TEST_SECRETS.items() if k != missing}
    with pytest.raises(MissingVariable, match=rf"\b{missing}\b"):
        load_compose(env)
    with pytest.raises(MissingVariable, match=rf"\b{missing}\b"):
        load_compose({**env, missing: ""})  # empty is missing too (`:?`)


def test_the_dagster_services_and_the_api_get_one_environment():
    compose = load_compose(TEST_SECRETS)
    webserver = service_environment(compose, "dagster-webserver")
    assert webserver == service_environment(compose, "dagster-daemon")
    assert webserver == service_environment(compose, "api")
    assert webserver == service_environment(compose, "migrate")
    assert webserver["METERLINE_ADMIN_KEY"] == TEST_SECRETS["METERLINE_ADMIN_KEY"]
    assert "test-postgres_password@postgres:5432" in webserver["DATABASE_URL"]


def test_every_service_has_a_healthcheck_and_waits_for_its_dependencies():
    compose = load_compose(TEST_SECRETS)
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    services = compose["services"]
    assert services["dagster-daemon"]["healthcheck"]["test"] == [
        "CMD", "dagster-daemon", "liveness-check",
    ]  # fmt: skip
    assert "/server_info" in " ".join(services["dagster-webserver"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["migrate"]["healthcheck"]["test"] == ["CMD", "meterline", "migrate", "--check"]
    for name in ("dagster-webserver", "dagster-daemon", "api"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }, name
    assert set(LONG_RUNNING) <= set(services)


def test_only_the_migrate_service_migrates():
    services = load_compose(TEST_SECRETS)["services"]
    migrating = [n for n, s in services.items() if s.get("command") == ["meterline", "migrate"]]
    assert migrating == ["migrate"]


def test_the_image_holds_every_package_the_code_location_imports():
    dockerfile = (COMPOSE.parent / "docker" / "Dockerfile").read_text()
    for package in ("meterline", "ingestion", "billing", "alerts", "portal", "orchestration"):
        assert f"COPY {package} ./{package}" in dockerfile, package


def test_api_workers_share_their_metrics_through_an_empty_directory():
    """`--workers N` > 1 needs PROMETHEUS_MULTIPROC_DIR, empty at each start (a tmpfs), or a
    scrape shows one worker's counters only."""
    compose = load_compose(TEST_SECRETS)
    api = compose["services"]["api"]
    workers = int(api["command"][api["command"].index("--workers") + 1])
    assert workers > 1
    directory = service_environment(compose, "api")["PROMETHEUS_MULTIPROC_DIR"]
    assert directory in api["tmpfs"]
