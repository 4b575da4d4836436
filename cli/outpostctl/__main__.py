"""`python -m outpostctl` runs the same command line as the `outpostctl` script."""

from outpostctl.main import main

main()
