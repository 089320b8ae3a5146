from avsync.cli import run

run()
