"""The command line's exit statuses, apart from the jobs: ``--help`` imports nothing heavy."""

EXIT_OK, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 2, 3, 4
#: Standard output closed early (e.g. piped into ``head``): 128 + SIGPIPE, as shells say.
EXIT_PIPE = 141
