"""``python -m embedhead ...`` (also what ``torchrun -m embedhead embed ...`` runs)."""

from embedhead.cli.main import main

if __name__ == "__main__":
    main()
