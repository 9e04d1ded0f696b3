"""``python -m sentinel`` is the ``sentinel`` command."""

from sentinel.cli import main

if __name__ == "__main__":
    main()
