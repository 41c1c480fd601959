"""``python -m testing.standin --port 8765``: serve a stand-in until Ctrl-C."""

from testing.standin.server import main

main()
