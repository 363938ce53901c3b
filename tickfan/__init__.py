"""tickfan: the command line and the wiring of the hops into processes.

No data-path logic lives here: ``tickfan.node`` connects ingest -> normalize -> snapshots/fanout inside one
process, ``tickfan.demo`` runs a node beside the exchange simulator, and ``tickfan.cli`` is the ``tickfan``
command.
"""
