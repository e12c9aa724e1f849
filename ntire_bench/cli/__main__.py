"""``python -m ntire_bench.cli``: the ``ntire-bench`` command."""

from ntire_bench.cli.main import main

if __name__ == "__main__":
    main()
