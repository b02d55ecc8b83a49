"""``.env.example`` is generated from the settings, so no variable can be missing from it."""

from pathlib import Path

from meterline.core.env_example import env_example
from meterline.core.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_committed_env_example_is_the_generated_one():
    assert (ROOT / ".env.example").read_text() == env_example(), (
        ".env.example is out of date: run `.venv/bin/python -m meterline.core.env_example "
        "> .env.example`"
    )


def test_env_example_lists_every_variable_commented_out():
    text = env_example()
    for name in Settings.variables():
        assert f"\n# {name}=" in text, name


def test_variables_toml_documents_only_variables_the_settings_read():
    from meterline.core.settings import Settings, documentation

    assert set(documentation()) == set(Settings.variables()), (
        "meterline/core/variables.toml and the fields of Settings must name the same variables"
    )
