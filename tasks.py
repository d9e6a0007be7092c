"""Rodeo's commands. Run ``invoke --list`` to see them, ``invoke --help TASK`` for flags.

Each task parses its flags, calls one toolkit function and prints the result.
Errors a user can cause end in one line with a hint and a non-zero exit; add
``--debug`` (or set RODEO_DEBUG=1) to see the traceback instead.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from pathlib import Path

from invoke import Collection, Exit, Program, task
from invoke.exceptions import ParseError

from toolkit import argv


class RodeoProgram(Program):
    """invoke's Program, reading Heroku's forms: ``rewrite`` before the tasks are parsed, a ``refusal`` instead of a bare ParseError."""

    def parse_tasks(self) -> None:
        # One parser, made here and used by invoke's own parse_tasks: making the contexts consumes the tasks' help texts.
        self._rodeo_parser = parser = super()._make_parser()
        names = {name: parser.contexts[name] for name in parser.contexts}
        flags = {name: set(ctx.flags) | set(ctx.flags.aliases) for name, ctx in names.items()}
        takes = {name: {f for f in flags[name] if ctx.flags[f].takes_value} for name, ctx in names.items()}
        self.core.unparsed = argv.rewrite(list(self.core.unparsed), takes)
        words = list(self.core.unparsed)
        _AFTER_DDASH[:] = (
            words[words.index("--") + 1 :] if "--" in words else []
        )  # `invoke run -- CMD ...` keeps its words apart
        try:
            super().parse_tasks()
        except ParseError as exc:
            word = argv.refused_word(str(exc))
            if word is None:
                raise
            said = argv.refusal(
                word, exc.context.name if exc.context is not None else None, list(self.core.unparsed), flags
            )
            print(f"error: {said.message}\n  hint: {said.hint}", file=sys.stderr)
            raise Exit(code=2) from None

    def _make_parser(self):  # invoke's own hook: the parser made above
        return self._rodeo_parser

    @staticmethod
    def _rodeo_words_after_ddash() -> list[str]:
        """The words given after ``--`` (``invoke run``'s command), each as given."""
        return list(_AFTER_DDASH)


_AFTER_DDASH: list[str] = []  # the words after `--`, as given (invoke's own remainder is one string)


def adopt() -> None:
    """Give the program of invoke's own ``invoke`` command Rodeo's parsing (it loads tasks.py before it parses the tasks).

    A program of another class (a test's, a tool's own binary) is left as it is.
    """
    main = sys.modules.get("invoke.main")
    program = getattr(main, "program", None)
    if type(program) is Program:
        program.__class__ = RodeoProgram


adopt()  # run by invoke's own command: Heroku's forms are read (config.set A=1 B=2) or refused with Rodeo's as the hint

ROOT = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("RODEO_STATE_DIR", ROOT / ".rodeo"))
CACHE_DIR = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo"))
# The local stack boots instances and runs HAProxy (the live stack) unless RODEO_LOCAL_LIVE=0.
LIVE = os.environ.get("RODEO_LOCAL_LIVE", "1") != "0"


def _fail(message: str, hint: str = "", code: int = 1) -> Exit:
    line = f"error: {message}"
    if hint:
        line += f"\n  hint: {hint}"
    print(line, file=sys.stderr)
    return Exit(code=code)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def rodeo(fn):
    """Turn Rodeo's errors into one line and an exit code, unless --debug."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        debug = kwargs.get("debug") or os.environ.get("RODEO_DEBUG") == "1"
        from toolkit.errors import RodeoError

        # `invoke config.set --help`: Invoke hands --help to a task's first positional argument.
        asked = next((a for a in (*args, *kwargs.values()) if isinstance(a, str) and a in ("--help", "-h")), None)
        if asked:
            raise _fail(
                f"{asked} came where {_task_name(fn)}'s first argument goes",
                f"for its help: invoke --help {_task_name(fn)}",
                2,
            )
        # SIGTERM (CI cancelling a job, systemd stopping it) cleans up like Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return fn(c, *args, **kwargs)
        except RodeoError as exc:
            if debug:
                raise
            raise _fail(exc.message, exc.hint, exc.exit_code) from None
        except BrokenPipeError:
            # The reader went away (`invoke iam-policy | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=141) from None
        except KeyboardInterrupt:
            if debug:
                raise
            raise _fail("interrupted", "everything started was cleaned up; run the command again", 130) from None
        except Exception as exc:
            from toolkit.aws import explain  # here: botocore is not loaded by commands that never call AWS

            known = explain(exc)
            if known is None or debug:
                raise
            raise _fail(known.message, known.hint) from None

    return wrapper


def _task_name(fn) -> str:
    """The name invoke knows a task function by: config_set -> config.set, iam_policy -> iam-policy."""
    for collection in ("config", "local", "review"):
        if fn.__name__.startswith(f"{collection}_"):
            return f"{collection}.{fn.__name__.removeprefix(collection + '_').replace('_', '-')}"
    return fn.__name__.replace("_", "-")


def _config(env: str):
    from toolkit import config

    return config.load(env, ROOT)


def _connect(cfg, seed_release=True, reseed=False, start=True):
    """``cfg``'s environment: AWS clients, build hosts, listeners' URLs (a local stack started and seeded unless ``start`` is False)."""
    from toolkit.environment import connect

    return connect(cfg, STATE_DIR, CACHE_DIR, live=LIVE, seed_release=seed_release, reseed=reseed, start=start)


def _stack():
    from toolkit.local.stack import Stack

    return Stack(state_dir=STATE_DIR, cache_dir=CACHE_DIR, live=LIVE)


def _aws(cfg, plan=False):
    """``cfg``'s environment; with ``plan`` a local stack is never started or seeded."""
    return _connect(cfg, seed_release=not plan, start=not plan)


def _reporter(json_mode: bool, verbose: bool = False):
    from toolkit.ui import Reporter

    return Reporter(stderr=json_mode, verbose=verbose)


def _print_json(data: dict) -> None:
    print(json.dumps(data, sort_keys=True, default=str))


def _show(result, json_mode: bool) -> None:
    """Print a typed result: its ``to_dict()`` as JSON, or its ``lines()``."""
    if json_mode:
        _print_json(result.to_dict())
    elif result.lines():  # none when the error that follows says it all (a rolled-back release)
        print("\n".join(result.lines()))


def _with_result(json_mode: bool, action, *args, open_report: bool = False, **kwargs) -> None:
    """Run ``action`` and show its result, also when it failed with one (then exit non-zero).

    ``open_report``: then open the picture the result names (a release's).
    """
    from toolkit.errors import RodeoError

    try:
        result = action(*args, **kwargs)
    except RodeoError as exc:  # a rolled-back release, a failed verification
        if exc.result is not None:
            _show(exc.result, json_mode)
            if open_report:
                _open_page(page_of(exc.result))
        raise
    _show(result, json_mode)
    if open_report:
        _open_page(page_of(result))


def page_of(result) -> str | None:
    """The picture a result names: a release's own, or that of the release inside a deploy, promote or config change."""
    return getattr(result, "report", None) or getattr(getattr(result, "release", None), "report", None)


def _open_page(path: str | None) -> None:
    """Open a release's picture in a browser when this machine shows one; else say where it is (on stderr)."""
    if not path:
        print("no picture was drawn for this run", file=sys.stderr)
        return
    shown = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("darwin", "win32")
    if shown:
        import webbrowser

        if webbrowser.open(Path(path).resolve().as_uri()):
            print(f"opened {path}", file=sys.stderr)
            return
    print(f"open {path} in a browser (no display here to open it on)", file=sys.stderr)


# --- bake ---------------------------------------------------------------------------


@task(
    help={
        "image": "image to bake, as named under 'images:' in rodeo.yml (default: app); several: --image a,b (baked at once when independent)",
        "all": "bake every image of rodeo.yml (parents first; independent images at once)",
        "jobs": "with several images: at most this many bakes at once (default 0: every image whose parent is ready)",
        "plan": "print what each image would do (reuse or bake, and why) and in which order; change nothing",
        "env": "environment: inventories/<env>/rodeo.yml (default: local)",
        "json": "print the bake's record as one JSON object on the last line (several images: one result per image)",
        "force": "bake even when a verified AMI with the same inputs exists",
        "var": "an extra Ansible variable KEY=VALUE for this image (repeatable; an input of the bake; never a secret)",
        "ref": "bake the image's git app source at this branch, tag or commit (overrides app_source.ref)",
        "wait": "wait for a bake of the same inputs that runs elsewhere, and reuse its AMI (--no-wait: refuse at once)",
        "break_lock": "take over the lock of a bake of the same inputs whose run died on another machine",
        "keep_on_failure": "leave a failed bake's build host up, and print how to log in and rerun the image tests",
        "cleanup": "remove the build hosts kept by --keep-on-failure (and nothing else)",
        "verbose": "also show Packer's own output as it comes (always kept in the bake's packer.log)",
        "debug": "show tracebacks",
    },
    iterable=["var"],
)
@rodeo
def bake(
    c,
    image="",
    env="local",
    json=False,
    force=False,
    var=None,
    ref="",
    wait=True,
    break_lock=False,
    keep_on_failure=False,
    cleanup=False,
    verbose=False,
    debug=False,
    all=False,
    jobs=0,
    plan=False,
):  # new flags last: the old short flags stay
    """Bake IMAGE into a verified AMI: render, packer build, Ansible, testinfra, tags."""
    from toolkit.bake.pipeline import bake as run_bake
    from toolkit.bake.plan import parse_vars
    from toolkit.bake.schedule import which_images
    from toolkit.packer.run import version as packer_version

    cfg = _config(env)
    names = which_images(cfg, image, all, ref, bool(var), jobs)
    extra = parse_vars(var or [])
    if not cleanup:
        packer_version()  # a machine without Packer says so at once, before the local stack starts
    aws = _connect(cfg, seed_release=not plan, start=not plan)
    hosts = aws.hosts()
    if cleanup:
        from toolkit.bake.keep import cleanup as remove_kept

        if not remove_kept(cfg, aws, hosts, STATE_DIR, _reporter(json)):
            print("no kept build host to remove")
        return
    if plan:
        from toolkit.bake.parallel import plan_images

        _show(plan_images(cfg, aws, hosts, names, STATE_DIR, jobs=jobs, force=force), json)
    elif len(names) == 1:
        _show(
            run_bake(
                cfg,
                aws,
                hosts,
                names[0],
                STATE_DIR,
                _reporter(json, verbose),
                force=force,
                extra_vars=extra,
                ref=ref or None,
                wait=wait,
                break_lock=break_lock,
                keep_on_failure=keep_on_failure,
            ),
            json,
        )
    else:
        from toolkit.bake.parallel import bake_images  # here: a single image's bake (its cache hit too) never loads it

        _with_result(
            json,
            bake_images,
            cfg,
            aws,
            hosts,
            names,
            STATE_DIR,
            _reporter(json, verbose),
            jobs=jobs,
            force=force,
            wait=wait,
            break_lock=break_lock,
            keep_on_failure=keep_on_failure,
        )


@task(
    help={
        "image": "render only this image (default: all)",
        "env": "environment (default: local)",
        "debug": "show tracebacks",
    }
)
@rodeo
def render(c, image="", env="local", debug=False):
    """Write packer/<image>.pkr.hcl for each image (deterministic; commit the result)."""
    from toolkit.packer import render as hcl
    from toolkit.packer.run import version

    cfg = _config(env)
    names = [cfg.image(image).name] if image else sorted(cfg.images)
    packer_version = version()
    for name in names:
        path = hcl.write(cfg, name, packer_version)
        print(f"wrote {path.relative_to(ROOT)}")


# --- local stack ---------------------------------------------------------------


@task(help={"env": "environment whose region the stack seeds (default: local)", "debug": "show tracebacks"})
@rodeo
def local_up(c, env="local", debug=False):
    """Start the local stack (moto server as AWS) and seed it; prints the endpoint."""

    from toolkit.local import stack

    cfg = _config(env)
    url = _connect(cfg, reseed=True).endpoint
    print(f"local stack up at {url}")
    print(f"  export AWS_ENDPOINT_URL={url}")
    for name, urls in stack.status(_stack())["load_balancers"].items():
        for port, lb_url in sorted(urls.items()):
            print(f"  load balancer {name}:{port} at {lb_url}")


@task(help={"debug": "show tracebacks"})
@rodeo
def local_down(c, debug=False):
    """Stop the local stack and forget its AMIs and local images."""
    from toolkit.local import stack

    stopped = stack.down(_stack())
    print("local stack stopped" if stopped else "local stack was not running")


@task(help={"json": "print one JSON object", "debug": "show tracebacks"})
@rodeo
def local_status(c, json=False, debug=False):
    """Show whether the local stack runs, its endpoint and its images."""
    from toolkit.local import stack

    info = stack.status(_stack())
    if json:
        _print_json(info)
    elif info["running"]:
        print(f"running at {info['endpoint']} (pid {info['pid']}), {len(info['images'])} local image(s)")
        if info["load_balancer_url"]:
            print(f"load balancer at {info['load_balancer_url']}")
    else:
        print("not running (start it with: invoke local.up)")


@task(
    help={
        "zone": "the Availability Zone to lose (us-east-1a, ...)",
        "back": "bring the zone back instead (what was not replaced thaws)",
        "env": "environment whose region the zone is in (default: local)",
        "debug": "show tracebacks",
    }
)
@rodeo
def local_fail_zone(c, zone, back=False, env="local", debug=False):
    """A drill: lose an Availability Zone on the live local stack (its instances freeze; groups replace them)."""
    from toolkit.local import stack

    lost = stack.fail_zone(_stack(), _config(env).region, zone, back=back)
    print(f"zones lost now: {', '.join(sorted(lost)) or 'none'}")


local = Collection("local")
local.add_task(local_up, "up")
local.add_task(local_down, "down")
local.add_task(local_status, "status")
local.add_task(local_fail_zone, "fail-zone")


# --- release -------------------------------------------------------------------------


@task(
    help={
        "image": "release the newest verified AMI of this image (default: release.image)",
        "ami": "release this AMI id",
        "env": "environment (default: local)",
        "plan": "print what would happen and change nothing",
        "json": "print one JSON object as the last line",
        "allow_unverified": "accept an AMI without rodeo:verified=true",
        "break_lock": "take over a lock left by a run that died (refused while its process runs on this host)",
        "config_only": "release the live AMI with the newest config version (after 'invoke config.set --no-release')",
        "report": "open the release's picture when it ends (drawn either way: its path is printed)",
        "debug": "show tracebacks",
    }
)
@rodeo
def release(
    c,
    image="",
    ami="",
    env="local",
    plan=False,
    json=False,
    allow_unverified=False,
    break_lock=False,
    config_only=False,
    debug=False,
    report=False,
):
    """Move traffic to a new AMI with the newest config version: canary steps, gates, automatic rollback on failure."""
    from toolkit.lineage import check_id
    from toolkit.release import waves

    cfg = _config(env)
    if ami:
        check_id(ami)  # before the local stack starts
    aws = _connect(cfg, seed_release=not plan, start=not plan)
    _with_result(
        json,
        waves.release,
        cfg,
        aws,
        ami=ami or None,
        image=image or None,
        allow_unverified=allow_unverified,
        break_lock=break_lock,
        plan_only=plan,
        reporter=_reporter(json),
        config_only=config_only,
        open_report=report,
    )


@task(
    help={
        "to": "vN: restore release N's AMI and config version (see 'invoke releases'); default: the release before the last",
        "env": "environment (default: local)",
        "plan": "print what would happen and change nothing",
        "json": "print one JSON object as the last line",
        "break_lock": "take over a lock left by a run that died (refused while its process runs on this host)",
        "report": "open the rollback's picture when it ends (drawn either way: its path is printed)",
        "region": "roll back in this region only (release.regions); default: every region the last release in waves reached",
        "debug": "show tracebacks",
    }
)
@rodeo
def rollback(c, to="", env="local", plan=False, json=False, break_lock=False, debug=False, report=False, region=""):
    """Restore the AMI and config that were live before the last release that moved traffic (or is in progress); --to vN: release N's.

    A rollback is a new release: the config version it restores becomes the
    newest, so the next deploy keeps it. A rerun of a killed rollback finishes that same rollback.
    With release.regions: in every region the last release in waves reached, the last wave first.
    """
    from toolkit.release import history, waves

    cfg = _config(env)
    number = history.number(to) if to else None  # before the local stack starts
    _with_result(
        json,
        waves.rollback,
        cfg,
        _aws(cfg, plan=plan),
        to=number,
        region=region or None,
        break_lock=break_lock,
        plan_only=plan,
        reporter=_reporter(json),
        open_report=report,
    )


@task(
    help={
        "from_": "the environment whose live AMI to promote (its inventory: inventories/<env>/rodeo.yml)",
        "to": "the environment to release it in, with its own config (default: production)",
        "plan": "print how the AMI would get there (as is, shared, copied) and its release; change nothing",
        "json": "print one JSON object as the last line",
        "break_lock": "take over the target's lock left by a run that died (refused while its process runs on this host)",
        "report": "open the picture of the release it makes when it ends (drawn either way: its path is printed)",
        "debug": "show tracebacks",
    }
)
@rodeo
def promote(c, from_="", to="production", plan=False, json=False, break_lock=False, debug=False, report=False):
    """Release in --to the AMI live in --from, with --to's own config (Heroku's pipelines:promote).

    The AMI is copied (another region) or shared and copied (another account)
    with its lineage tags; refused when it is unverified or was rolled back in
    --from. The release is the normal one (lock, gates, canary steps), and its
    ledger entry records where it came from ('invoke releases --env TO').
    """
    from toolkit.errors import ConfigError
    from toolkit.promote.execute import promote as run_promote
    from toolkit.promote.plan import check_envs

    if not from_:
        raise ConfigError(
            "--from is required: the environment whose live AMI to promote",
            "like: invoke promote --from staging --to production",
        )
    check_envs(from_, to)  # before the local stack starts
    source, target = _config(from_), _config(to)
    _with_result(
        json,
        run_promote,
        source,
        _aws(source, plan=plan),
        target,
        _aws(target, plan=plan),
        plan_only=plan,
        break_lock=break_lock,
        reporter=_reporter(json),
        open_report=report,
    )


@task(
    help={
        "env": "environment (default: local)",
        "json": "print one JSON object",
        "report": "draw a release's picture again from the logs now (--report: the newest; --report v7), and open it",
        "region": "that region's releases (release.regions: each region numbers its own); default: region:",
        "debug": "show tracebacks",
    },
    optional=["report"],
)
@rodeo
def releases(c, env="local", json=False, debug=False, report=None, region=""):
    """Every release and rollback, numbered (v1, v2, ...), newest first: AMI, app, config version, who, when, how long, outcome, reason.

    --report [vN] draws release N's picture again instead (on AWS the access
    logs arrive 5 to 10 minutes late: a picture drawn as the release ended
    lacks its last minutes).
    """
    from toolkit import regions
    from toolkit.release import history
    from toolkit.release import report as pictures

    cfg = _config(env)
    if report is None:
        _show(history.read(*regions.one(cfg, _connect(cfg), region or None)), json)
        return
    # The number is read before the local stack starts: a typo costs no start.
    number = history.number(report, "--report") if isinstance(report, str) and report else None
    written = pictures.again(*regions.one(cfg, _connect(cfg), region or None), number)
    _show(written, json)
    _open_page(written.path)


@task(
    help={
        "env": "environment (default: local)",
        "json": "print one JSON object as the last line",
        "debug": "show tracebacks",
    }
)
@rodeo
def status(c, env="local", json=False, debug=False):
    """Show the active slot, its AMI and git sha, weights, health per slot and the last releases."""
    from toolkit.release import status as state

    cfg = _config(env)
    info = state.everywhere(cfg, _connect(cfg))
    if json:
        _print_json(info)
    else:
        print("\n".join(state.lines(cfg, info)))


@task(
    help={
        "process": "web=N or N (or web+1, web-1): that many instances in the slot that serves ('invoke status' shows how many run)",
        "min": "the group's new minimum (not below release.capacity.min)",
        "max": "the group's new maximum",
        "env": "environment (default: local)",
        "plan": "print what would change, change nothing",
        "json": "print one JSON object as the last line",
        "break_lock": "take over a lock left by a run that died (refused while its process runs on this host)",
        "debug": "show tracebacks",
    }
)
@rodeo
def scale(c, process="", min="", max="", env="local", plan=False, json=False, break_lock=False, debug=False):
    """Run N instances of the app in the slot that serves (Heroku's ps:scale), kept until changed: the next release starts at it."""
    from toolkit.release import resize

    cfg = _config(env)
    change = resize.parse(process, min, max)  # before the local stack starts
    _show(
        resize.scale(
            cfg, _aws(cfg, plan=plan), change, plan_only=plan, break_lock=break_lock, reporter=_reporter(json)
        ),
        json,
    )


@task(help={"env": "environment (default: local)", "debug": "show tracebacks"})
@rodeo
def setup(c, env="local", debug=False):
    """Create what Rodeo owns for releases (table, launch template, slot groups, log group and its retention) and check the rest."""
    from toolkit.release import setup as release_setup

    cfg = _config(env)
    everywhere = release_setup.ensure_everywhere(cfg, _aws(cfg))
    for region, done in everywhere:
        where = f"{region}: " if len(everywhere) > 1 else ""
        for word, key in (("created", "created"), ("found  ", "found"), ("scaling:", "scaled"), ("waiting", "waiting")):
            for item in done.get(key, []):
                print(f"{where}{word} {item}")


# --- logs ----------------------------------------------------------------------------


@task(
    help={
        "follow": "keep showing new lines of every instance (those that start meanwhile too) from now on, until Ctrl-C (with --since: from then on)",
        "tail": "the same as --follow (Heroku's name)",
        "since": "from this far back: 30s, 10m, 2h, 1d, or a time like 2026-11-27T14:05:00Z (default: 10m; now with --follow)",
        "grep": "only lines whose message matches this Python regular expression",
        "slot": "only the instances of this slot: blue or green",
        "instance": "only this instance's lines (its id)",
        "all": "the system's lines too (the kernel, systemd, the base image's services); default: the app's units only",
        "env": "environment (default: local)",
        "json": "one JSON object per line (time, instance, slot, version, unit, message, priority)",
        "debug": "show tracebacks",
    }
)
@rodeo
def logs(
    c,
    follow=False,
    since="",
    grep="",
    slot="",
    instance="",
    env="local",
    json=False,
    debug=False,
    tail=False,
    all=False,
):
    """Show the app's lines from every instance's journal (CloudWatch Logs), merged by time, each with its instance, slot and version."""
    from toolkit.logs import tail as reading
    from toolkit.logs import view

    follow = follow or tail
    cfg = _config(env)
    query = view.query(since or ("0s" if follow else "10m"), slot=slot, instance=instance, grep=grep, everything=all)
    aws = _aws(cfg, plan=True)  # reading logs never starts the local stack
    show = (lambda line: _print_json(line.to_dict())) if json else (lambda line: print(line.text(), flush=True))
    if not follow:
        for line in reading.lines(cfg, aws, query):
            show(line)
        return
    try:
        for line in reading.follow(cfg, aws, query):
            show(line)
            sys.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) is how --follow ends: not an error
        pass


# --- config vars ---------------------------------------------------------------------

CONFIG_CHANGE_HELP = {
    "env": "environment (default: local)",
    "release": "release the new config version with the live AMI (default); --no-release only records it",
    "json": "print one JSON object as the last line (keys and versions, never values)",
    "break_lock": "take over a release lock left by a run that died (refused while its process runs on this host)",
    "report": "open the picture of the release it makes when it ends (drawn either way: its path is printed)",
    "debug": "show tracebacks",
}


@task(
    help={
        "pair": "KEY=VALUE; with --secret a bare KEY reads its value from stdin (a hidden prompt on a terminal)",
        "and_": "another KEY=VALUE in the same config version (repeatable)",
        "secret": "the values are secrets: SSM SecureString, never shown unless asked (config.list --show-secrets)",
        **CONFIG_CHANGE_HELP,
    },
    iterable=["and_"],
)
@rodeo
def config_set(
    c, pair, and_=None, secret=False, env="local", release=True, json=False, break_lock=False, debug=False, report=False
):
    """Set config vars: a new config version, released with the live AMI through the release's gates.

    invoke config.set GREETING=hello --and WORKERS=4; invoke config.set DB_PASSWORD --secret < file.
    A key is an environment variable name (^[A-Z_][A-Z0-9_]*$, not AWS_* or RODEO_*), a value 1 to 4096 bytes.
    """
    from toolkit import configchange
    from toolkit.configvars.versions import parse_pairs

    cfg = _config(env)
    values = parse_pairs([pair, *(and_ or [])], secret, lambda key: configchange.read_value(sys.stdin, key))
    _with_result(
        json,
        configchange.set_vars,
        cfg,
        _connect(cfg),
        values,
        secret=secret,
        release=release,
        break_lock=break_lock,
        reporter=_reporter(json),
        open_report=report,
    )


@task(
    help={
        "key": "the key to remove",
        "and_": "another key to remove in the same config version (repeatable)",
        **CONFIG_CHANGE_HELP,
    },
    iterable=["and_"],
)
@rodeo
def config_unset(c, key, and_=None, env="local", release=True, json=False, break_lock=False, debug=False, report=False):
    """Remove config vars: a new config version without them, released like config.set (their SSM parameters stay, for rollbacks)."""
    from toolkit import configchange
    from toolkit.configvars.versions import parse_keys

    cfg = _config(env)
    keys = parse_keys([key, *(and_ or [])])
    _with_result(
        json,
        configchange.unset_vars,
        cfg,
        _connect(cfg),
        keys,
        release=release,
        break_lock=break_lock,
        reporter=_reporter(json),
        open_report=report,
    )


@task(
    help={
        "env": "environment (default: local)",
        "json": "print one JSON object",
        "show_secrets": "show secret values (decrypted)",
        "debug": "show tracebacks",
    }
)
@rodeo
def config_list(c, env="local", json=False, show_secrets=False, debug=False):
    """Show the newest config version's vars (secrets as '(secret)' unless --show-secrets) and the one live."""
    from toolkit import configchange

    cfg = _config(env)
    _show(configchange.list_vars(cfg, _aws(cfg), show_secrets=show_secrets), json)


config_vars = Collection("config")
config_vars.add_task(config_set, "set")
config_vars.add_task(config_unset, "unset")
config_vars.add_task(config_list, "list")


# --- deploy --------------------------------------------------------------------------


@task(
    help={
        "env": "environment (default: local)",
        "size": "instance type of the one-off instance (default: release.instance_type)",
        "ami": "run on this AMI (default: the live one)",
        "config_version": "with this config version (default: the live one; 0: none)",
        "timeout": "stop the command after this many seconds (default: 3600)",
        "json": "print one JSON object as the last line (stderr keeps the progress)",
        "debug": "show tracebacks",
    }
)
@rodeo
def run(c, env="local", size="", ami="", config_version=-1, timeout=3600, json=False, debug=False):
    """Run a command once on a fresh instance of the live release (invoke run -- CMD ...); its exit code is this one's.

    The output streams as it comes (through CloudWatch Logs: no SSH, no open port); Ctrl-C stops it; the instance is
    terminated afterwards in every case.
    """
    import shlex

    from toolkit.lineage import check_id
    from toolkit.release import run as oneoff_run

    words = list(_AFTER_DDASH) or shlex.split(c.remainder or "")
    cfg = _config(env)
    if ami:
        check_id(ami)
    aws = _connect(cfg)
    from toolkit.ui import Reporter

    result = oneoff_run.run(
        cfg,
        aws,
        words,
        size=size or None,
        ami=ami or None,
        config_version=None if config_version < 0 else config_version,
        timeout=timeout,
        reporter=Reporter(stderr=True),
    )
    if json:
        _print_json(result.to_dict())
    if result.exit_code:
        raise Exit(code=result.exit_code)


@task(
    help={
        "image": "image to bake and release (default: release.image in rodeo.yml)",
        "ref": "bake the image's git app source at this branch, tag or commit (overrides app_source.ref)",
        "env": "environment (default: local)",
        "plan": "print what would be baked or reused (and why) and how it would be released; change nothing",
        "json": "print one JSON object as the last line",
        "report": "open the picture of the release it makes when it ends (drawn either way: its path is printed)",
        "debug": "show tracebacks",
    }
)
@rodeo
def deploy(c, image="", ref="", env="local", plan=False, json=False, debug=False, report=False):
    """Bake (or reuse) the image, then release it: from a commit to traffic in one command.

    A failed bake releases nothing; a failed release rolls back by itself, and
    the previous version keeps serving.
    """
    from toolkit.deploy import deploy as run_deploy

    cfg = _config(env)
    if image:
        cfg.image(image)
    aws = _connect(cfg, seed_release=not plan, start=not plan)
    _with_result(
        json,
        run_deploy,
        cfg,
        aws,
        aws.hosts(),
        STATE_DIR,
        image=image or None,
        ref=ref or None,
        plan_only=plan,
        reporter=_reporter(json),
        open_report=report,
    )


# --- review apps ---------------------------------------------------------------------

REVIEW_HELP = {
    "env": "the parent environment: its load balancer, listener and config vars (default: local)",
    "plan": "print what would change, change nothing",
    "json": "print one JSON object as the last line",
    "break_lock": "take over the review app's lock left by a run that died",
    "debug": "show tracebacks",
}


@task(
    help={
        "name": "the review app's name (default: the --ref's, like feature-login for feature/login); CI: pr-<number>",
        "ref": "bake the app's git source at this branch, tag or commit (default: app_source.ref in rodeo.yml)",
        "set_": "a config var KEY=VALUE of this review app only, over the parent's (repeatable; kept by later ups)",
        **REVIEW_HELP,
    },
    iterable=["set_"],
)
@rodeo
def review_up(c, name="", ref="", set_=None, env="local", plan=False, json=False, break_lock=False, debug=False):
    """Bake (or reuse) the app at --ref and run it as a review app on a host of its own behind the shared load balancer.

    Prints its URL: <name>.<review.domain in rodeo.yml>. Rerun it after a new commit: an unchanged app reuses
    its AMI, a changed one replaces the instance once the new one is healthy.
    """
    from toolkit.configvars.versions import parse_pairs
    from toolkit.review import apps

    cfg = _config(env)
    apps.names_for(cfg, name or None, ref or None)  # before the local stack starts
    overrides = parse_pairs(set_, False, lambda key: "") if set_ else {}
    aws = _aws(cfg, plan=plan)
    _show(
        apps.up(
            cfg,
            aws,
            aws.hosts(),
            STATE_DIR,
            name=name or None,
            ref=ref or None,
            overrides=overrides,
            plan_only=plan,
            break_lock=break_lock,
            reporter=_reporter(json),
        ),
        json,
    )


@task(help={"name": "the review app to remove (see 'invoke review.list')", **REVIEW_HELP})
@rodeo
def review_down(c, name, env="local", plan=False, json=False, break_lock=False, debug=False):
    """Remove a review app: its listener rule, instance and group, target group, launch template, config overrides.

    Safe to run again (after a kill, or for a review app that is gone).
    """
    from toolkit.review import apps
    from toolkit.review.names import check_name, names_of

    cfg = _config(env)
    names_of(cfg, check_name(name))  # before the local stack starts
    _show(apps.down(cfg, _aws(cfg, plan=plan), name, plan, break_lock, _reporter(json)), json)


@task(help={"env": REVIEW_HELP["env"], "json": "print one JSON object", "debug": "show tracebacks"})
@rodeo
def review_list(c, env="local", json=False, debug=False):
    """Show the review apps: name, ref, AMI, URL, when made and last deployed."""
    from toolkit.review import apps

    cfg = _config(env)
    _show(apps.list_apps(cfg, _aws(cfg, plan=True)), json)


@task(help={"idle_days": "remove those not deployed for more than this many days", **REVIEW_HELP})
@rodeo
def review_prune(c, idle_days, env="local", plan=False, json=False, break_lock=False, debug=False):
    """Remove the review apps not deployed for more than --idle-days days (a nightly CI job)."""
    from toolkit.errors import ConfigError
    from toolkit.review import apps

    if not str(idle_days).isdigit():
        raise ConfigError(f"--idle-days {idle_days!r} is not a number of days", "give a whole number, like 7")
    cfg = _config(env)
    _show(apps.prune(cfg, _aws(cfg, plan=plan), int(idle_days), plan, break_lock, _reporter(json)), json)


review = Collection("review")
review.add_task(review_up, "up")
review.add_task(review_down, "down")
review.add_task(review_list, "list")
review.add_task(review_prune, "prune")


# --- verify --------------------------------------------------------------------------


@task(
    help={
        "ami": "the AMI id to boot and test",
        "env": "environment: inventories/<env>/rodeo.yml (default: local)",
        "image": "whose tests to run (default: the AMI's rodeo:image tag)",
        "junit": "also write the JUnit XML report to this file (for CI)",
        "json": "print one JSON object as the last line",
        "debug": "show tracebacks",
    }
)
@rodeo
def verify(c, ami, env="local", image="", junit="", json=False, debug=False):
    """Run an image's testinfra tests on an instance booted from AMI; the exit code is the verdict.

    On AWS: a temporary key pair, a security group open to SSH from this
    machine only, and one instance, all deleted afterwards. On the local stack:
    the AMI's local image in a throw-away sandbox. The verdict is tagged on the
    AMI (rodeo:verified, rodeo:verified-at).
    """
    from toolkit.images.check import verify_ami
    from toolkit.lineage import check_id

    cfg = _config(env)
    check_id(ami)  # before the local stack starts
    if image:
        cfg.image(image)
    aws = _connect(cfg)
    _with_result(
        json,
        verify_ami,
        cfg,
        aws,
        aws.hosts(),
        ami,
        image=image or None,
        junit=Path(junit).resolve() if junit else None,
        state_dir=STATE_DIR,
        reporter=_reporter(json),
    )


# --- prune ---------------------------------------------------------------------------


@task(
    help={
        "image": "image whose AMIs to prune, as named under 'images:' in rodeo.yml",
        "keep": "how many of the newest AMIs to keep (at least 1)",
        "env": "environment (default: local)",
        "plan": "list what would go and why the rest stays; change nothing",
        "json": "print one JSON object as the last line",
        "debug": "show tracebacks",
    }
)
@rodeo
def prune(c, image, keep="", env="local", plan=False, json=False, debug=False):
    """Deregister IMAGE's AMIs beyond the newest KEEP (and their snapshots) in every region, never one in use."""
    from toolkit.images import prune as pruning

    cfg = _config(env)
    cfg.image(image)
    keep = pruning.check_keep(keep or "0")  # a string flag: invoke's own int() would end in a traceback
    _show(pruning.prune(cfg, _aws(cfg, plan=plan), image, keep, plan_only=plan, reporter=_reporter(json)), json)


# --- doctor --------------------------------------------------------------------------


@task(
    help={
        "env": "environment whose account to check (default: local)",
        "json": "print one JSON object as the last line",
        "debug": "show tracebacks",
    }
)
@rodeo
def doctor(c, env="local", json=False, debug=False):
    """Check, with read calls only, what would break the first bake or release on the account: one line per check.

    Exits non-zero when a check fails. On the local stack it needs the stack running (it never starts it).
    """
    from toolkit.doctor.run import doctor as check_account
    from toolkit.errors import RodeoError

    cfg = _config(env)
    result = check_account(cfg, _aws(cfg, plan=True))
    _show(result, json)
    if result.failed:
        names = ", ".join(c.name for c in result.failed)
        raise RodeoError(
            f"{len(result.failed)} doctor check(s) failed: {names}",
            "fix each ✗ line above, then run 'invoke doctor' again",
        )


# --- least privilege -----------------------------------------------------------------


@task(
    help={
        "for_": "which role: bake, verify, release, prune, logs, all (default), doctor (invoke doctor's reads), promote (release's and invoke promote's, in each environment of a promotion), review (bake's and the review apps': CI's review.up/down/list/prune), or instance (the instances' own role)",
        "env": "environment whose names, tags and regions scope the policy (default: local)",
        "debug": "show tracebacks",
    }
)
@rodeo
def iam_policy(c, for_="all", env="local", debug=False):
    """Print the IAM policy (JSON) with exactly the AWS actions Rodeo calls, scoped to its names and tags.

    Makes no AWS call. bake includes what Packer's amazon-ebs builder calls for
    the rendered template; release covers release, rollback, scale, releases, status and setup.
    """
    from toolkit import iam

    cfg = _config(env)
    print(json.dumps(iam.policy(cfg, iam.purposes_for(for_)), indent=2))


ns = Collection()
ns.add_task(bake)
ns.add_task(render)
ns.add_collection(local)
ns.add_task(deploy)
ns.add_task(run)
ns.add_task(release)
ns.add_task(rollback)
ns.add_task(promote)
ns.add_task(releases)
ns.add_task(scale)
ns.add_task(status)
ns.add_task(setup)
ns.add_task(logs)
ns.add_collection(config_vars)
ns.add_collection(review)
ns.add_task(verify)
ns.add_task(prune)
ns.add_task(iam_policy)
ns.add_task(doctor)
