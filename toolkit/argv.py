"""The command line as a Heroku user types it: taken in Rodeo's form, or refused with Rodeo's form as the hint.

invoke parses the whole command line before any task runs, so a word it does
not know never reaches a task: it prints "No idea what 'ps' is!" and exits.
``tasks.py`` gives invoke's program a ``parse_tasks`` that first rewrites the
words (``rewrite``: the extra ``KEY=VALUE`` words of ``config.set`` become
``--and KEY=VALUE``) and turns what invoke still refuses into one error line
with a hint (``refusal``), exit code 2.

This module is pure (no invoke): tables of Heroku's commands and flags, and
functions from the words to the words or to the refusal.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass

# Tasks whose one positional argument may come several times: each extra one becomes this flag.
VARIADIC = {"config.set": "--and", "config.unset": "--and"}
# Tasks whose argument may be left out (invoke's positional arguments are required): the word becomes this flag.
# `invoke rollback v102` as Heroku's `heroku rollback v102`; `invoke scale 4` beside `invoke scale --max 6`.
OPTIONAL = {"rollback": "--to", "scale": "--process"}

# Tasks whose first positional word starts a command of their own: it and every word after it are that command's
# (``invoke run bash -c 'ls'`` is ``invoke run -- bash -c 'ls'``, as ``heroku run bash`` reads).
PASSTHROUGH = {"run"}

# A Heroku command -> the Rodeo command that does it ({args}: the words given after it), or what to do instead.
COMMANDS = {
    "ps": "invoke status",
    "ps:scale": "invoke scale {args}",
    "ps:restart": "Rodeo restarts nothing in place: 'invoke release --config-only' starts new instances of the live AMI once the config changed",
    "restart": "Rodeo restarts nothing in place: 'invoke release --config-only' starts new instances of the live AMI once the config changed",
    "releases": "invoke releases",
    "releases:info": "invoke releases (each one's AMI, app, config version, who, when and why); invoke status for what serves now",
    "releases:rollback": "invoke rollback {args}",
    "config": "invoke config.list",
    "config:get": "invoke config.list",
    "config:set": "invoke config.set {args}",
    "config:unset": "invoke config.unset {args}",
    "config:add": "invoke config.set {args}",
    "config:remove": "invoke config.unset {args}",
    "logs:tail": "invoke logs --tail",
    "open": "invoke status (it prints the URL where the app answers)",
    "info": "invoke status",
    "apps:info": "invoke status",
    "run:detached": "invoke run -- {args} (it waits for the command; its output stays in 'invoke logs')",
    "push": "invoke deploy (it bakes the commit, then releases it)",
    "builds": "invoke bake --plan (what would be baked), invoke status (what serves)",
    "builds:create": "invoke bake",
    "pipelines:promote": "invoke promote --from ENV --to ENV (the source's live AMI, released with the target's config)",
    "create": "an app's environment is inventories/<env>/rodeo.yml; then 'invoke setup --env <env>'",
    "apps:create": "an app's environment is inventories/<env>/rodeo.yml; then 'invoke setup --env <env>'",
    "reviewapps:enable": "review apps need no switch: 'invoke review.up --ref BRANCH' (CI: the pull-request jobs of .github/workflows/bake-and-release.yml)",
    "reviewapps:disable": "invoke review.down NAME (each one), or invoke review.prune --idle-days N",
}

# A Heroku flag (of any command, or of one) -> Rodeo's form.
FLAGS = {
    "--app": "--env ENV: rodeo.yml names the app; --env picks inventories/<env>/rodeo.yml",
    "-a": "--env ENV: rodeo.yml names the app; --env picks inventories/<env>/rodeo.yml",
    "--remote": "--env ENV (inventories/<env>/rodeo.yml)",
    "-r": "--env ENV (inventories/<env>/rodeo.yml)",
    "--num": "--since 10m (lines from that far back)",
    "-n": "--since 10m (lines from that far back)",
    "--dyno": "--instance ID or --slot blue|green",
    "--ps": "--instance ID or --slot blue|green",
    "--source": "--all (the system's lines too; the app's are the default)",
}


@dataclass(frozen=True)
class Refusal:
    """What to print for words invoke refused: the error and the hint."""

    message: str
    hint: str


def rewrite(words: list[str], takes_value: dict[str, set[str]]) -> list[str]:
    """``words`` (the tasks and their flags) with each extra positional word of a VARIADIC task given its flag,
    and the one word of an OPTIONAL task too.

    ``takes_value`` maps each task name to the flags of it that take a value
    (their next word is that value, not a positional). A word naming a task
    starts that task, as invoke reads it; nothing after ``--`` changes. The
    first positional word of a PASSTHROUGH task (even a task's name) gets a ``--`` before it.
    """
    out: list[str] = []
    task, seen, value_next = None, 0, False
    for i, word in enumerate(words):
        if word == "--":
            return out + words[i:]
        if value_next:
            out.append(word)
            value_next = False
        elif task in PASSTHROUGH and not (word.startswith("-") and word != "-"):
            return (
                out + ["--"] + words[i:]
            )  # even a word naming a task: `invoke run status` runs a command named status
        elif word in takes_value:
            task, seen = word, 0
            out.append(word)
        elif word.startswith("-") and word != "-":
            out.append(word)
            value_next = task is not None and "=" not in word and word in takes_value[task]
        elif task in VARIADIC and seen:
            out += [VARIADIC[task], word]
        elif task in OPTIONAL and not seen:
            out += [OPTIONAL[task], word]
            seen += 1
        else:
            out.append(word)
            seen += 1
    return out


def refusal(word: str, task: str | None, words: list[str], tasks: dict[str, set[str]]) -> Refusal:
    """Why ``word`` was refused (after ``task``, or as a command when None) and Rodeo's form; ``tasks`` maps each task to all its flags."""
    if word.startswith("-"):
        return _flag(word.split("=", 1)[0], task, tasks)
    after = words[words.index(word) + 1 :] if word in words else []
    form = COMMANDS.get(word)
    if form is None and ":" in word and word.replace(":", ".") in tasks:
        form = f"invoke {word.replace(':', '.')} {{args}}"
    if form is not None:
        shown = form.format(args=" ".join(after)).replace("  ", " ").rstrip()
        return Refusal(
            f"no command {word!r} (Heroku's)", f"Rodeo's form: {shown}" if shown.startswith("invoke ") else shown
        )
    if task is not None and task not in VARIADIC:
        return Refusal(f"{task} takes no argument {word!r}", f"invoke --help {task} lists its flags")
    close = difflib.get_close_matches(word, list(tasks), n=1)
    return Refusal(
        f"no command {word!r}",
        (f"did you mean 'invoke {close[0]}'? " if close else "") + "invoke --list shows Rodeo's commands",
    )


def _flag(flag: str, task: str | None, tasks: dict[str, set[str]]) -> Refusal:
    where = f"{task} has no flag {flag}" if task else f"no flag {flag} before a command"
    if flag in FLAGS:
        return Refusal(where, f"Rodeo's form: {FLAGS[flag]}")
    close = difflib.get_close_matches(flag, sorted(tasks.get(task, ())), n=1) if task else []
    said = f"did you mean {close[0]}? " if close else ""
    return Refusal(
        where,
        said
        + (f"invoke --help {task} lists its flags" if task else "flags come after the command: invoke COMMAND --flag"),
    )


def refused_word(message: str) -> str | None:
    """The word of invoke's "No idea what 'X' is!" (X as Python's repr), else None (other parse errors are invoke's to say)."""
    head, tail = "No idea what ", " is!"
    if not (message.startswith(head) and message.endswith(tail)):
        return None
    try:
        word = ast.literal_eval(message[len(head) : -len(tail)])
    except (ValueError, SyntaxError):
        return None
    return word if isinstance(word, str) else None
