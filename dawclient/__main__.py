"""``python -m dawclient`` runs the desktop client."""

from dawclient.cli import main

if __name__ == "__main__":
    main()
