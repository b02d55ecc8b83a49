"""The files a user runs without reading the code: compose, workspace, Makefile, CI."""

import importlib.util
import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_docker_compose_services_refer_to_things_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "dagster-webserver", "dagster-daemon", "api"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert "--appendonly" in services["redis"]["command"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        command = service.get("command") or []
        if not command or "image" in service:
            continue
        program = command[0]
        if program == "meterline":
            module, _func = scripts["meterline"].split(":")
            assert _module_exists(module), module
            assert command[1] in {"serve", "migrate"}, name
        elif program.startswith("dagster"):
            workspace = command[command.index("-w") + 1]
            config = yaml.safe_load((ROOT / workspace).read_text())
            for entry in config["load_from"]:
                assert _module_exists(entry["python_module"]["module_name"]), name
        else:
            raise AssertionError(f"service {name} runs unknown program {program}")


def test_dockerfile_copies_every_top_level_package():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for package in ("meterline", "ingestion", "billing", "portal", "orchestration", "dbt_project"):
        assert f"COPY {package} " in dockerfile, package


def test_makefile_has_the_documented_targets_and_ci_calls_make_test():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("install", "demo", "test", "ui", "lint", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must end by running `make test`"
    parsed = subprocess.run(
        ["bash", "-n", str(ROOT / ".ci" / "run")], capture_output=True, text=True
    )
    assert parsed.returncode == 0, f".ci/run is not valid bash: {parsed.stderr}"


def test_dbt_core_is_pinned_below_1_12():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dbt-core>=1.11,<1.12" in pyproject["project"]["dependencies"]


def test_env_example_documents_every_setting():
    example = (ROOT / ".env.example").read_text()
    for name in (
        "DATABASE_URL", "REDIS_URL", "STRIPE_API_KEY", "STRIPE_API_BASE", "SMTP_URL",
        "ALERT_WEBHOOK_URL", "DAGSTER_HOME", "METERLINE_HOME", "BILLING_GRACE_HOURS",
        "METERLINE_ADMIN_KEY",
    ):  # fmt: skip
        assert f"# {name}=" in example, name


def test_layering_domain_packages_never_import_dagster_or_each_other():
    rules = {
        "ingestion": ("dagster", "billing", "portal", "orchestration", "meterline.cli"),
        "billing": ("dagster", "ingestion", "portal", "orchestration", "meterline.cli"),
        "portal": ("dagster", "orchestration", "meterline.cli", "meterline.server"),
        "meterline/core": ("dagster", "ingestion", "billing", "orchestration", "meterline.cli"),
        "orchestration": ("meterline.cli",),
    }
    offenders = []
    for folder, banned in rules.items():
        for path in (ROOT / folder).rglob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                if not stripped.startswith(("import ", "from ")):
                    continue
                module = stripped.split()[1]
                if any(module == b or module.startswith(b + ".") for b in banned):
                    offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []
