-- pgbench script: place_orders with 1 order(s) per call for a random funded user (run after bench_orders.py, on tickfan_bench_0)
\set n random(0, 90)
SELECT user_id AS u FROM accounts ORDER BY user_id OFFSET :n LIMIT 1 \gset
SELECT count(*) FROM place_orders(ARRAY[gen_random_uuid()], ARRAY[:u]::text[], ARRAY[md5(random()::text)], ARRAY['fp'], ARRAY['AAPL'], ARRAY['buy'], ARRAY['market'], ARRAY['day'], ARRAY[1]::bigint[], ARRAY[NULL]::bigint[], ARRAY[100]::bigint[], ARRAY[100]::bigint[], ARRAY['cash','cash_held'], ARRAY['USD','USD'], ARRAY[-100,100]::bigint[], ARRAY['\x00'::bytea], ARRAY['\x00'::bytea], ARRAY[NULL]::bigint[], ARRAY[NULL]::bigint[], ARRAY[NULL]::numeric[], ARRAY[NULL]::bigint[], ARRAY[NULL]::bigint[]);
