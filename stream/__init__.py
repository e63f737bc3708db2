"""Kafka side of kdrec: the click-event contract (``events``), publishing (``producer``),
the dead-letter topic (``dlq``), dataset replay (``replay``), topic creation (``topics``), the
item-record contract (``items``) and the live item feed (``item_feed``, ``text_serving``), and
the embedded local broker (``broker``, the only module that knows about Tansu).

Everything talks to Kafka through kafka-python with ``KafkaSettings.client_options()``, so
the same code runs against Apache Kafka with any security settings.
"""
