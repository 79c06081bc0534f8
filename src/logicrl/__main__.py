"""``python -m logicrl``: the ``logicrl`` command (`logicrl.cli.main`)."""

from logicrl.cli import main

if __name__ == "__main__":
    main()
