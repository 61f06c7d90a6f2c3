"""``python -m deepsynth_cli.studio [OPTIONS]``: ``deepsynth studio`` with the CLI's error handling."""

import sys

from deepsynth.process_exit import skip_final_collection
from deepsynth_cli.app import cli, main
from deepsynth_cli.studio.command import studio

if __name__ == "__main__":
    skip_final_collection()
    if "studio" not in cli.commands:
        cli.add_command(studio)
    sys.exit(main(["studio", *sys.argv[1:]]))
