"""Heroku's forms on Rodeo's command line, as tables: the words rewritten, or refused with Rodeo's form as the hint."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import argv
from toolkit.argv import refusal, rewrite

ROOT = Path(__file__).resolve().parents[2]
TAKES = {
    "run": {"--env", "-e", "--size", "-s"},
    "config.set": {"--env", "-e", "--and", "-a"},
    "config.unset": {"--env", "-e", "--and", "-a"},
    "status": {"--env", "-e"},
    "logs": {"--since", "-s"},
    "rollback": {"--to", "--env"},
    "scale": {"--process", "--min", "--max", "--env"},
}

REWRITES = [
    ("several pairs", ["config.set", "A=1", "B=2", "C=3"], ["config.set", "A=1", "--and", "B=2", "--and", "C=3"]),
    ("one pair is left alone", ["config.set", "A=1"], ["config.set", "A=1"]),
    ("the --and form is left alone", ["config.set", "A=1", "--and", "B=2"], ["config.set", "A=1", "--and", "B=2"]),
    (
        "a flag's value is not a pair",
        ["config.set", "--env", "staging", "A=1", "B=2"],
        ["config.set", "--env", "staging", "A=1", "--and", "B=2"],
    ),
    (
        "short flag and boolean flags",
        ["config.set", "A=1", "--secret", "-e", "x", "B=2", "--no-release"],
        ["config.set", "A=1", "--secret", "-e", "x", "--and", "B=2", "--no-release"],
    ),
    (
        "--env=x holds its value",
        ["config.set", "--env=x", "A=1", "B=2"],
        ["config.set", "--env=x", "A=1", "--and", "B=2"],
    ),
    ("unset several keys", ["config.unset", "A", "B"], ["config.unset", "A", "--and", "B"]),
    ("a task name starts that task", ["config.set", "A=1", "status"], ["config.set", "A=1", "status"]),
    ("other tasks are left alone", ["logs", "--since", "5m", "x"], ["logs", "--since", "5m", "x"]),
    ("nothing after --", ["config.set", "A=1", "--", "B=2"], ["config.set", "A=1", "--", "B=2"]),
    (
        "run's command starts at its first word",
        ["run", "--env", "staging", "bash", "-c", "ls --all"],
        ["run", "--env", "staging", "--", "bash", "-c", "ls --all"],
    ),
    ("run's command may be named like a task", ["run", "status", "x"], ["run", "--", "status", "x"]),
    (
        "run with -- is left alone",
        ["run", "--size", "t3.large", "--", "rails", "console"],
        ["run", "--size", "t3.large", "--", "rails", "console"],
    ),
    ("heroku rollback v102", ["rollback", "v102"], ["rollback", "--to", "v102"]),
    ("rollback --to is left alone", ["rollback", "--to", "v102", "--plan"], ["rollback", "--to", "v102", "--plan"]),
    ("a bare rollback", ["rollback", "--env", "x"], ["rollback", "--env", "x"]),
    ("scale N", ["scale", "4", "--max", "6"], ["scale", "--process", "4", "--max", "6"]),
    ("scale web=N", ["scale", "--env", "x", "web=2"], ["scale", "--env", "x", "--process", "web=2"]),
    ("scale limits only", ["scale", "--min", "2"], ["scale", "--min", "2"]),
]


@pytest.mark.parametrize("name,words,expected", REWRITES, ids=[r[0] for r in REWRITES])
def test_rewrite(name, words, expected):
    assert rewrite(words, TAKES) == expected


FLAGS = {
    "config.set": {"--env", "--and"},
    "status": {"--env"},
    "logs": {"--since", "--tail", "--follow"},
    "deploy": {"--ref"},
    "scale": {"--plan"},
}

REFUSALS = [
    ("ps", None, ["ps"], "no command 'ps' (Heroku's)", "Rodeo's form: invoke status"),
    ("ps:scale", None, ["ps:scale", "web=3"], "no command 'ps:scale' (Heroku's)", "Rodeo's form: invoke scale web=3"),
    (
        "config:set",
        None,
        ["config:set", "A=1", "B=2"],
        "no command 'config:set' (Heroku's)",
        "Rodeo's form: invoke config.set A=1 B=2",
    ),
    (
        "releases:rollback",
        None,
        ["releases:rollback", "v102"],
        "no command 'releases:rollback' (Heroku's)",
        "Rodeo's form: invoke rollback v102",
    ),
    (
        "releases:rollback",
        None,
        ["releases:rollback"],
        "no command 'releases:rollback' (Heroku's)",
        "Rodeo's form: invoke rollback",
    ),
    (
        "open",
        None,
        ["open"],
        "no command 'open' (Heroku's)",
        "Rodeo's form: invoke status (it prints the URL where the app answers)",
    ),
    (
        "run:detached",
        None,
        ["run:detached", "bin/task"],
        "no command 'run:detached' (Heroku's)",
        "Rodeo's form: invoke run -- bin/task (it waits for the command; its output stays in 'invoke logs')",
    ),
    (
        "deplyo",
        None,
        ["deplyo"],
        "no command 'deplyo'",
        "did you mean 'invoke deploy'? invoke --list shows Rodeo's commands",
    ),
    ("xyzzy", None, ["xyzzy"], "no command 'xyzzy'", "invoke --list shows Rodeo's commands"),
    (
        "-n",
        "logs",
        ["logs", "-n", "200"],
        "logs has no flag -n",
        "Rodeo's form: --since 10m (lines from that far back)",
    ),
    (
        "--app",
        "status",
        ["status", "--app", "web"],
        "status has no flag --app",
        "Rodeo's form: --env ENV: rodeo.yml names the app; --env picks inventories/<env>/rodeo.yml",
    ),
    (
        "--tial",
        "logs",
        ["logs", "--tial"],
        "logs has no flag --tial",
        "did you mean --tail? invoke --help logs lists its flags",
    ),
    ("--x=1", "deploy", ["deploy", "--x=1"], "deploy has no flag --x", "invoke --help deploy lists its flags"),
    ("foo", "logs", ["logs", "foo"], "logs takes no argument 'foo'", "invoke --help logs lists its flags"),
]


@pytest.mark.parametrize("word,task,words,message,hint", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal(word, task, words, message, hint):
    assert refusal(word, task, words, FLAGS) == argv.Refusal(message, hint)


def fresh_tasks():
    """A copy of tasks.py of its own: invoke's parser takes the tasks' help texts from the tasks it is given."""
    spec = importlib.util.spec_from_file_location("rodeo_tasks_for_argv", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, capsys):
    """``invoke ARGS`` through Rodeo's program, parsing only (the task itself is not run): the program, exit code, stderr (--help: stdout)."""
    tasks = fresh_tasks()
    program = tasks.RodeoProgram(namespace=tasks.ns, name="invoke", binary="invoke")
    program.execute = lambda: None
    try:
        program.run(["invoke", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return program, code, err if args[:1] != ["--help"] else out


def test_the_program_takes_several_pairs_and_refuses_with_a_hint(capsys):
    program, code, err = run(["config.set", "A=1", "B=2", "--env", "staging", "C=3"], capsys)
    assert code == 0 and err == ""
    (parsed,) = program.tasks
    assert (
        parsed.args["pair"].value == "A=1"
        and parsed.args["and_"].value == ["B=2", "C=3"]
        and parsed.args["env"].value == "staging"
    )
    _, code, err = run(["ps:scale", "web=3"], capsys)
    assert (code, err) == (2, "error: no command 'ps:scale' (Heroku's)\n  hint: Rodeo's form: invoke scale web=3\n")
    _, code, err = run(["logs", "-n", "5"], capsys)
    assert code == 2 and err.startswith("error: logs has no flag -n\n")


def test_logs_tail_and_t_are_follow(capsys):
    program, code, _ = run(["logs", "-t", "--all"], capsys)
    assert code == 0 and program.tasks[0].args["tail"].value is True and program.tasks[0].args["all"].value is True


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_invokes_own_command_reads_herokus_forms_and_keeps_the_help_texts():
    ps = invoke("ps:scale", "web=3")
    assert (ps.returncode, ps.stderr) == (
        2,
        "error: no command 'ps:scale' (Heroku's)\n  hint: Rodeo's form: invoke scale web=3\n",
    )
    helped = invoke("--help", "logs")  # the contexts are made once: making them consumes the tasks' help texts
    assert helped.returncode == 0 and "the same as --follow (Heroku's name)" in helped.stdout


def test_adopt_gives_invokes_own_program_rodeos_parsing():
    from invoke import Program, main

    tasks = fresh_tasks()
    saved = main.program.__class__
    try:
        main.program.__class__ = Program
        tasks.adopt()
        assert type(main.program) is tasks.RodeoProgram
    finally:
        main.program.__class__ = saved


def test_run_takes_heroku_s_form_and_keeps_the_command_s_words_apart(capsys):
    program, code, err = run(["run", "--size", "t3.large", "sh", "-c", "echo a b; exit 3", "--env", "x"], capsys)
    assert code == 0 and err == ""
    (parsed,) = program.tasks
    assert (
        parsed.args["size"].value == "t3.large" and parsed.args["env"].value == "local"
    )  # --env after the command is the command's
    assert program._rodeo_words_after_ddash() == ["sh", "-c", "echo a b; exit 3", "--env", "x"]
