"""Replicas of the books: the same published rows, held somewhere other readers can reach.

Each replica is a publisher (beside the books that the feed updates) and a reader (a ``BookSource`` the edges
serve from, in another process or on another host), written side by side with the same names:

============  ======================================  =========================================
replica       publisher                               reader
============  ======================================  =========================================
``shm``       ``ShmPublisher``: applies each packet   ``BookView``: copies changed rows out of
              into ``Books`` whose row IS the shared  the block, retrying rows a writer was
              block, under the writer's generation    writing (``sync``, before each flush)
              (seqlock), then publishes names/depth
``redis``     ``RedisPublisher``: every interval,     ``RedisBooks``: follows the partitions of
              changed quotes to ``quote:{SYM}``       watched symbols, seeding each from its
              hashes and partitioned channels         hash
============  ======================================  =========================================

Both carry the row of ``normalize.row``, and the Redis one the quote view of ``normalize.quote``. Depth, trade
prints, status and bars cross both (over Redis: ``redis_depth``, ``redis_bars`` beside ``redis``). The Redis
readers follow their channels through ``redis_channels.PartitionSubscriber``, on one server or a Redis Cluster.
"""
