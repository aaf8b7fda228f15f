"""The ``jitwatch`` command: :mod:`streams.cli.main` dispatches to one module per command
group, each with its own arguments; every command reads its settings from the one object
``main`` builds."""
