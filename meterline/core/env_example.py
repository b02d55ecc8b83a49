"""``.env.example``, generated from :class:`~meterline.core.settings.Settings`.

Every field of the settings is a variable with a description, a default and an example, so
the file can never miss one: ``python -m meterline.core.env_example > .env.example`` writes it,
and a unit test checks that the committed file is what this prints.
"""

from __future__ import annotations

import sys
import textwrap

from meterline.core.settings import Settings

ENV_EXAMPLE_HEADER = """\
# Meterline configuration. Every variable is optional: unset (or empty) means the default.
# Copy to .env and export it (e.g. `set -a; . ./.env; set +a`) to point Meterline at real services.
# Generated from meterline/core/variables.toml: python -m meterline.core.env_example > .env.example
"""


def env_example() -> str:
    """The text of ``.env.example``: every variable, what it is for, and its default."""
    lines = [ENV_EXAMPLE_HEADER.rstrip("\n")]
    for field in Settings.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = extra.get("unset") or field.default
        text = f"{field.description} Default: {default}"
        lines.append("")
        lines.extend(f"# {line}" for line in textwrap.wrap(text, width=98))
        lines.append(f"# {field.validation_alias}={(field.examples or [''])[0]}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(env_example())
