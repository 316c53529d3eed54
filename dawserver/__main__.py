"""``python -m dawserver`` runs the CLI."""

from dawserver.cli import main

if __name__ == "__main__":
    main()
