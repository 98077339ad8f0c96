"""``python -m symmem ...``: the same command line as the ``symmem`` script.

Useful to run a checkout's own code when another checkout owns the console script.
"""

from symmem.cli import run

if __name__ == "__main__":
    run()
