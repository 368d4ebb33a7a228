"""`python -m innflow.cli`."""

from innflow.cli import main

main()
