"""tickfan: the app layer, the command line and the wiring of the hops into processes.

Takes: command-line flags, ``TICKFAN_*`` variables and a TOML file (``config``). Gives: running processes.
Imported by no package (import-linter checks it); it imports any of them. No data-path logic lives here:

- ``cli`` is the ``tickfan`` command (one subcommand per role, each with ``--help``); ``config`` reads every
  option of every subcommand from flags, the environment and the file (``config_cli``: ``tickfan config show``);
  ``args`` turns the bottom layer's parsers into usage errors; one module per command family: ``node`` (node /
  ingest), ``demo``, ``simulate``, ``capture_cli`` (record / replay), ``trading_cli`` (migrate, api, token,
  deposit, trade, execute), ``market_maker``, ``watch``;
- ``roles`` builds a node from roles (ingest, attached or remote books, Redis publisher, edge) in one place;
  ``node`` starts and stops them; ``metrics`` exports a node's counters to Prometheus, ``metrics_orders`` the
  order path's, ``metrics_share`` serves a node's every process on one /metrics; ``logs`` is every command's
  ``--log-level``/``--log-format`` (JSON lines, credentials masked); ``httpserver`` a small HTTP server in a
  process's own loop;
- ``demo`` and ``trading`` run a node with the simulated venue and the trading stack beside it; ``procs`` is the
  one helper for their child processes (die with the parent, ready line, stop all).
"""
