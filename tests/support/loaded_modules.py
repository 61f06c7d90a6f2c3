"""Import the modules named on the command line and print what ``sys.modules`` holds, as JSON.

Usage: ``python loaded_modules.py MODULE... [-- CLI_ARG...]``. With ``--``, the ``deepsynth``
command runs with the arguments after it (its output goes to stderr) and its exit code is
reported too. The last line of stdout is ``{"modules": [...], "exit_code": N or null}``.
Tests run it in a fresh interpreter to see what importing or running something drags in.
"""

import contextlib
import importlib
import json
import sys


def main(argv: list[str]) -> dict:
    """Import ``argv``'s modules, run the CLI on what follows ``--``; report the loaded modules."""
    names, cli_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, None)
    for name in names:
        importlib.import_module(name)
    exit_code = None
    if cli_args is not None:
        from deepsynth_cli import main as cli_main

        with contextlib.redirect_stdout(sys.stderr):
            exit_code = cli_main(cli_args)
    return {"modules": sorted(sys.modules), "exit_code": exit_code}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
