"""The runtime floor every stage stands on: settings, logging, metrics, Kafka delivery, database access, the worker
runner and the operations server. It imports only :mod:`schemas`; the stages and the shell import it."""
