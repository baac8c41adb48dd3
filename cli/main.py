"""`dtpoc`: the commands (Click). Each builds its settings and client when it runs, so `--help` needs
neither a config nor a reachable API. Errors are one line on stderr and an exit code (errors.ExitCode)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import click
from pydantic import SecretStr

from . import render
from .client import ApiClient, LogNotStarted
from .errors import CliError, ExitCode
from .launch_spec import JOB_TYPES, LaunchFlags, key_values, launch_request, read_spec
from .models import OutputFile, ServiceStatus
from .settings import Layer, load_settings
from .watch import ServiceTerminated, follow, outcome

JSON_HELP = "Print the API's answer as JSON (for scripts)."
# `logs -f` of a run that has not started asks again this often until it has.
LOG_START_POLL_SECONDS = 1.0


class Settings:
    """The global flags, turned into a client when a command needs one."""

    def __init__(self, flags: Layer, config: Path | None) -> None:
        self.flags = flags
        self.config = config

    def client(self) -> ApiClient:
        return ApiClient(load_settings(self.flags, self.config))


pass_settings = click.make_pass_decorator(Settings)
json_option = click.option("--json", "as_json", is_flag=True, help=JSON_HELP)


def paging(function: Any) -> Any:
    function = click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)(function)
    return click.option("--skip", type=click.IntRange(0), default=0, show_default=True)(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", help="The API's base URL [env DTPOC_URL; default the local v1beta1 URL].")
@click.option("--token", help="The API token [env DTPOC_TOKEN]; prefer --token-file.")
@click.option(
    "--token-file", type=click.Path(path_type=Path), help="A file holding the token [env DTPOC_TOKEN_FILE]."
)
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Config file (TOML: url, token, token_file) [env DTPOC_CONFIG; ~/.config/dtpoc/config.toml].",
)
@click.pass_context
def cli(
    ctx: click.Context, url: str | None, token: str | None, token_file: Path | None, config: Path | None
) -> None:
    """Use the DT platform's orchestrator API: files, launches, status, outputs.

    Flags override the environment, which overrides the config file. Exit codes: 0 done, 1 the
    service failed (wait), 2 timed out (wait), 3 the request failed, 4 bad usage.
    """
    secret = SecretStr(token) if token else None
    ctx.obj = Settings(Layer(url=url, token=secret, token_file=token_file), config)


# -- files ----------------------------------------------------------------------------------------
@cli.group()
def files() -> None:
    """Upload, list, download and delete stored files (module inputs and collected outputs)."""


@files.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@json_option
@pass_settings
def files_upload(settings: Settings, path: Path, as_json: bool) -> None:
    """Upload PATH (streamed, with a progress bar). Content already stored is not stored twice: the
    answer names the existing file."""
    total = path.stat().st_size
    with settings.client() as client, render.transfer(f"upload {path.name}", total) as bar:
        uploaded, _ = client.upload(path, lambda sent: bar.advance(bar.task_ids[0], sent))
    if as_json:
        render.print_json(uploaded)
    elif uploaded.duplicate:
        render.out.print(
            f"already stored: {uploaded.id} has the same content ({render.size(uploaded.length)}); "
            "nothing new was stored",
            markup=False,
        )
    else:
        render.out.print(
            f"stored {uploaded.id} ({uploaded.filename}, {render.size(uploaded.length)})", markup=False
        )


@files.command("ls")
@paging
@json_option
@pass_settings
def files_ls(settings: Settings, skip: int, limit: int, as_json: bool) -> None:
    """List stored files, oldest first."""
    with settings.client() as client:
        listed = client.files(skip, limit)
    if as_json:
        render.print_json(listed)
    else:
        render.files_table(listed)


@files.command("get")
@click.argument("file_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="File or folder to write [default: its name, here].",
)
@json_option
@pass_settings
def files_get(settings: Settings, file_id: str, output: Path | None, as_json: bool) -> None:
    """Download file FILE_ID (written completely, or not at all)."""
    with settings.client() as client:
        path = _download(client, file_id, output)
    if as_json:
        render.print_json({"id": file_id, "path": str(path), "length": path.stat().st_size})
    else:
        render.out.print(f"wrote {path} ({render.size(path.stat().st_size)})", markup=False)


@files.command("rm")
@click.argument("file_id")
@pass_settings
def files_rm(settings: Settings, file_id: str) -> None:
    """Delete file FILE_ID (refused while a service mounts it)."""
    with settings.client() as client:
        client.delete_file(file_id)
    render.out.print(f"deleted {file_id}", markup=False)


def _download(client: ApiClient, file_id: str, target: Path | None) -> Path:
    """The download, its bar shown once the API has answered (an error stays one line)."""
    bar = render.transfer_bar()
    with render.showing(bar):

        def started(total: int | None, name: str) -> None:
            bar.add_task(f"download {name}", total=total)
            bar.start()

        return client.download(
            file_id, target, started, lambda received: bar.advance(bar.task_ids[0], received)
        )


# -- services -------------------------------------------------------------------------------------
@cli.command()
@click.option(
    "-f", "--file", "spec_file", type=click.Path(path_type=Path), help="A launch spec (YAML or JSON)."
)
@click.option("--image", help="Image repository, without tag.")
@click.option("--version", help="Image tag [default: latest].")
@click.option("--description")
@click.option("--env", multiple=True, metavar="NAME=VALUE", help="An environment variable (repeatable).")
@click.option(
    "--mount", multiple=True, metavar="FILEID=NAME", help="A stored file at /input/NAME (repeatable)."
)
@click.option("--job-type", type=click.Choice(JOB_TYPES), help="[default: ondemand, or the spec's]")
@click.option("--reps", type=int, help="Runs (ondemand, scheduled, sim).")
@click.option("--schedule", help="Cron schedule (scheduled).")
@click.option("--port", type=int, help="Port a persistent module serves.")
@json_option
@pass_settings
def launch(
    settings: Settings,
    spec_file: Path | None,
    image: str | None,
    version: str | None,
    description: str | None,
    env: tuple[str, ...],
    mount: tuple[str, ...],
    job_type: str | None,
    reps: int | None,
    schedule: str | None,
    port: int | None,
    as_json: bool,
) -> None:
    """Launch a module, from flags or a spec file (-f; flags given as well override it).

    A spec is the API's launch request, e.g. in YAML:

    \b
        image: example.org/hospital-lab
        version: "1.0"
        mount_files: {<file id>: input.xlsx}
        env: {SCENARIO: baseline}
        ana: {job_type: ondemand, reps: 4}
    """
    flags = LaunchFlags(
        image=image,
        version=version,
        description=description,
        port=port,
        env=key_values(env, "--env", "NAME=VALUE"),
        mounts=key_values(mount, "--mount", "FILEID=NAME"),
        job_type=job_type,
        reps=reps,
        schedule=schedule,
    )
    body = launch_request(flags, read_spec(spec_file) if spec_file is not None else None)
    with settings.client() as client:
        launched = client.launch(body)
    if as_json:
        render.print_json(launched)
    else:
        render.out.print(f"launched {launched.id}", markup=False)


@cli.command("ls")
@paging
@json_option
@pass_settings
def ls(settings: Settings, skip: int, limit: int, as_json: bool) -> None:
    """List services with their status and runs, oldest first."""
    with settings.client() as client:
        listed = client.services(skip, limit)
    if as_json:
        render.print_json(listed)
    else:
        render.services_table(listed)


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


interval_option = click.option(
    "--interval",
    type=click.FloatRange(0.1),
    default=1.0,
    show_default=True,
    help="Seconds between polls, for an API without the events stream.",
)


@cli.command()
@click.argument("service_id")
@click.option("--watch", is_flag=True, help="Follow the service until it settles (a line per change).")
@interval_option
@json_option
@pass_settings
def status(settings: Settings, service_id: str, watch: bool, interval: float, as_json: bool) -> None:
    """A service's status, runs and output files. With --watch, each change as the API announces it
    (its events stream), until the service settles; with --json a JSON document a line."""
    with settings.client() as client:
        if not watch:
            current = client.status(service_id)
            if as_json:
                render.print_json(current)
            else:
                render.status_view(current)
            return

        def changed(current: ServiceStatus) -> None:
            if as_json:
                render.print_json_line(current)
            else:
                render.change_line(current, _now())

        try:
            follow(client, service_id, interval, None, changed)
        except ServiceTerminated:
            if as_json:
                render.print_json_line({"id": service_id, "status": "terminated"})
            else:
                render.out.print(f"{_now()}  terminated", markup=False)


@cli.command()
@click.argument("service_id")
@click.option("--timeout", type=click.FloatRange(0), help="Give up after this many seconds (exit code 2).")
@interval_option
@json_option
@pass_settings
@click.pass_context
def wait(
    ctx: click.Context,
    settings: Settings,
    service_id: str,
    timeout: float | None,
    interval: float,
    as_json: bool,
) -> None:
    """Wait until a service settles (told by the API's events stream): exit code 0 ok (or a long-running
    service up), 1 failed (or terminated meanwhile), 2 timed out."""
    with settings.client() as client:
        try:
            current, settled = follow(client, service_id, interval, timeout)
        except ServiceTerminated:
            raise CliError(f"service {service_id} was terminated", ExitCode.SERVICE_FAILED) from None
    if as_json:
        render.print_json(current)
    else:
        render.out.print(f"{service_id} {current.status}: {render.runs(current)}", markup=False)
    if not settled:
        render.note(f"timed out after {timeout:g} s; the service is {current.status}")
        ctx.exit(ExitCode.TIMED_OUT)
    ctx.exit(outcome(current))


@cli.command()
@click.argument("service_id")
@click.option("--run", type=click.IntRange(0), default=0, show_default=True, help="Run index.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing while the run runs (waiting for it to start)."
)
@click.option("--tail", type=click.IntRange(1), help="Only the last K lines.")
@pass_settings
def logs(settings: Settings, service_id: str, run: int, follow: bool, tail: int | None) -> None:
    """Print a run's log: live while the run runs, and after it finished (the platform keeps it with
    the run's outputs, so it outlives the run's pod)."""
    waiting = False
    with settings.client() as client:
        while True:
            try:
                with client.log(service_id, run, follow, tail) as (headers, chunks):
                    for chunk in chunks:
                        sys.stdout.buffer.write(chunk)
                        sys.stdout.buffer.flush()
            except LogNotStarted as exc:
                if not follow:
                    raise CliError(f"no log yet: {exc.detail}") from None
                if not waiting:
                    render.note(f"run {run} has not started yet; waiting for it")
                    waiting = True
                time.sleep(LOG_START_POLL_SECONDS)
                continue
            break
    if headers.get("x-log-truncated") == "true":
        render.note("the stored log was cut to the platform's limit: its middle is left out (marked in it)")


def output_path(folder: Path, output: OutputFile, place: tuple[str, int] | None = None) -> Path:
    """Where a run's output goes: FOLDER/run-<n>/<its name>, or for a study's run (`place`: its scenario
    and replication) FOLDER/<scenario>/run-<replication>/<its name> (names may hold sub-folders, never
    `..`; a scenario name is a DNS label)."""
    parts = PurePosixPath(output.filename.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or any(part in ("", ".", "..") for part in parts):
        raise CliError(f"run {output.run}'s output {output.filename!r} is not a relative path")
    if place is not None:
        scenario, replication = place
        if scenario in ("", ".", "..") or "/" in scenario or "\\" in scenario:
            raise CliError(f"scenario name {scenario!r} is not a folder name")
        return folder.joinpath(scenario, f"run-{replication}", *parts)
    return folder.joinpath(f"run-{output.run}", *parts)


def study_places(current: ServiceStatus) -> dict[int, tuple[str, int]]:
    """Run number -> (scenario, replication) of a study's runs; empty for other services."""
    return {run: (group.name, r) for group in current.scenarios or () for r, run in enumerate(group.runs)}


@cli.command()
@click.argument("service_id")
@click.option(
    "-o", "--output", "folder", type=click.Path(file_okay=False, path_type=Path), help="[default: ./<id>]"
)
@json_option
@pass_settings
def outputs(settings: Settings, service_id: str, folder: Path | None, as_json: bool) -> None:
    """Download every run's outputs into a folder: <folder>/run-<n>/<file name>; a study's by scenario,
    <folder>/<scenario>/run-<replication>/<file name>, and its summary as <folder>/summary.json and
    <folder>/summary.csv once written."""
    folder = folder if folder is not None else Path(service_id)
    written: list[dict[str, Any]] = []
    with settings.client() as client:
        current = client.status(service_id)
        places = study_places(current)
        for output in current.output_files:
            place = places.get(output.run)
            path = client.download(output.file_id, output_path(folder, output, place))
            item = {**output.model_dump(), "path": str(path), "length": path.stat().st_size}
            if place is not None:
                item.update(scenario=place[0], replication=place[1])
            written.append(item)
        if current.summary is not None:
            for name, file_id in (
                ("summary.json", current.summary.json_file_id),
                ("summary.csv", current.summary.csv_file_id),
            ):
                path = client.download(file_id, folder / name)
                written.append(
                    {"summary": name, "file_id": file_id, "path": str(path), "length": path.stat().st_size}
                )
    if as_json:
        render.print_json(written)
        return
    if not written:
        render.note(f"{service_id} has no outputs yet (status {current.status})")
    for item in written:
        if "summary" in item:
            what = "study summary"
        elif "scenario" in item:
            what = f"{item['scenario']} run {item['replication']} (run {item['run']})"
        else:
            what = f"run {item['run']}"
        render.out.print(f"{what}: {item['path']} ({render.size(item['length'])})", markup=False)


@cli.command()
@click.argument("service_id")
@json_option
@pass_settings
def terminate(settings: Settings, service_id: str, as_json: bool) -> None:
    """Stop a service and remove it (its collected outputs stay in the file store)."""
    with settings.client() as client:
        terminated = client.terminate(service_id)
    if as_json:
        render.print_json(terminated)
    else:
        render.out.print(f"terminated {terminated.id}", markup=False)


def _fail(message: str, code: ExitCode) -> None:
    # Plain write, not rich: a long message stays one line whatever the terminal's width.
    sys.stderr.write(f"dtpoc: error: {message}\n")
    sys.exit(code)


def run() -> None:
    """The `dtpoc` console script: one line on stderr for any failure, never a traceback."""
    try:
        code = cli.main(prog_name="dtpoc", standalone_mode=False)
    except CliError as exc:
        _fail(exc.message, exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(exc.format_message() + hint, ExitCode.USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message(), ExitCode.USAGE)
    except (click.Abort, KeyboardInterrupt):
        _fail("interrupted", ExitCode.REQUEST_FAILED)
    except Exception as exc:  # a bug of ours: still one line
        _fail(f"unexpected {type(exc).__name__}: {exc}", ExitCode.REQUEST_FAILED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
