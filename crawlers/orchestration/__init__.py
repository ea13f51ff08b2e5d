"""Running captures: a source's run (sources come from :mod:`crawlers.registry`) cut into
batches and pools (:mod:`.plan`), one capture run end to end (:mod:`.run`), a capture job
in a process of its own (:mod:`.job`), the steps after a DAG run's captures (:mod:`.steps`), the
run's report (:mod:`.report`) and the ``warcinfo`` a run writes (:mod:`.warcinfo`).

The DAGs and the command line call this; it drives the Scrapy side (spiders, middlewares,
handlers, pipelines, the browser, the recorder) and the archive. Nothing in ``crawlers`` outside
this folder imports it.
"""
