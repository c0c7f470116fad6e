"""Run the CLI as ``python -m aekit``."""

from .cli.main import main

if __name__ == "__main__":
    main()
