"""Set up (or check) the home's stores as ``deepsynth run`` does, and print the set-up record as JSON.

Usage: ``python set_up_store.py [enospc]``. With ``enospc`` the disk "fills up" right after ZenML
created its database, while MLflow's is being created (the one fault a test cannot cause for real
here without a small filesystem to fill).
"""

import errno
import json
import sys


def main(fault: str | None) -> None:
    if fault == "enospc":
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        def disk_full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device (injected)")

        SqlAlchemyStore.__init__ = disk_full  # where the set-up creates MLflow's database
    from pipelines.local_stack import ensure_stack
    from pipelines.stores import read_record

    ensure_stack()
    print(json.dumps(read_record()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
