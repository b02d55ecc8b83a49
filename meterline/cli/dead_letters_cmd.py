"""`meterline dead-letters list|replay|discard`: stream rows the loader could not load."""

from __future__ import annotations

import typer

from meterline.cli.context import console, runtime

dead_letters_app = typer.Typer(
    help="Stream rows the loader set aside (raw.usage_dead_letters): inspect, replay, discard.",
    no_args_is_help=True,
)


@dead_letters_app.command("list")
def list_cmd() -> None:
    """Every dead letter: its event, stream entry, attempts, Postgres's reason and the raw row."""
    from ingestion.dead_letters import list_dead_letters

    letters = list_dead_letters(runtime().engine)
    if not letters:
        console.print("no dead letters: every stream row was loaded")
        return
    console.print(
        f"{len(letters)} dead letter(s); fix the cause, then `meterline dead-letters replay --all`"
    )
    for d in letters:
        event = f"{d.tenant_id}/{d.event_id}" if d.line_no else "(malformed entry)"
        where = (
            f"{d.stream} {d.entry_id} line {d.line_no}" if d.line_no else f"{d.stream} {d.entry_id}"
        )
        console.print(
            f"#{d.dead_letter_id}  {event}  {where}  attempts {d.attempts}  "
            f"first seen {d.first_seen:%Y-%m-%d %H:%M:%S}Z",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        console.print(f"    reason:  {d.reason}", markup=False, highlight=False, soft_wrap=True)
        shown = d.payload_text().replace("\t", "\\t")
        console.print(f"    payload: {shown}", markup=False, highlight=False, soft_wrap=True)


@dead_letters_app.command("replay")
def replay_cmd(
    ids: list[int] = typer.Argument(None, help="Dead-letter ids (from `dead-letters list`)."),
    all_letters: bool = typer.Option(False, "--all", help="Replay every dead letter."),
) -> None:
    """Load dead letters into raw.usage_events (never twice) and remove the loaded ones."""
    from ingestion.dead_letters import replay

    if bool(ids) == all_letters:
        raise ValueError(
            "give dead-letter IDs or --all (one of the two), e.g. `meterline dead-letters replay --all`"
        )
    result = replay(runtime().engine, None if all_letters else ids)
    console.print(
        f"replay: {result.loaded} loaded, {result.duplicates} already in raw.usage_events "
        f"(not counted again), {len(result.still_failing)} still failing"
    )
    for letter_id, reason in result.still_failing:
        console.print(f"  #{letter_id}: {reason}", markup=False, highlight=False, soft_wrap=True)
    if result.missing:
        raise LookupError(
            f"no dead letter with id {', '.join(map(str, result.missing))}: see `meterline dead-letters list`"
        )
    if result.still_failing:
        raise RuntimeError(
            f"{len(result.still_failing)} dead letter(s) still fail: fix the reason shown, then replay again"
        )


@dead_letters_app.command("discard")
def discard_cmd(
    ids: list[int] = typer.Argument(..., help="Dead-letter ids to delete for good."),
) -> None:
    """Delete dead letters that are not usage (they are never loaded)."""
    from ingestion.dead_letters import discard

    removed = discard(runtime().engine, ids)
    console.print(f"{removed} dead letter(s) discarded")
    if removed < len(ids):
        raise LookupError("some ids were not dead letters: see `meterline dead-letters list`")
