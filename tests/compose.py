"""docker-compose.yml read the way `docker compose` reads it: YAML (PyYAML), then variable
interpolation from an environment, per the Compose specification:

``$VAR`` / ``${VAR}`` (empty when unset), ``${VAR:-default}`` (unset or empty),
``${VAR-default}`` (unset), ``${VAR:?message}`` / ``${VAR?message}`` (an error naming the
variable), ``${VAR:+replacement}`` / ``${VAR+replacement}``, and ``$$`` for a literal ``$``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

COMPOSE_FILE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>\w+))"
)


class MissingVariable(ValueError):
    """A required variable (``${VAR:?message}``) is unset: what `docker compose` refuses with."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("?", ":?"):
            if empty:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return value
        if op in ("-", ":-"):
            return arg if empty else value
        if op in ("+", ":+"):
            return "" if empty else arg
        return value or ""

    return _TOKEN.sub(replace, text)


def load_compose(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict:
    """The compose file with every string interpolated from ``env`` (as `docker compose
    config` would show it; YAML anchors and merge keys resolved by PyYAML)."""

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        if isinstance(node, str):
            return interpolate(node, env)
        return node

    return walk(yaml.safe_load(path.read_text()))


def service_environment(compose: dict, service: str) -> dict[str, str]:
    """A service's ``environment`` as the container gets it (list or mapping form)."""
    env = compose["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def required_variables(path: Path = COMPOSE_FILE) -> set[str]:
    """Every variable the file requires (``${VAR:?...}`` or ``${VAR?...}``)."""
    return {m["name"] for m in _TOKEN.finditer(path.read_text()) if m["op"] in ("?", ":?")}
