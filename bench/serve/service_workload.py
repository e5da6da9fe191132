#!/usr/bin/env python3
# bench/serve/service_workload.py: a long-running "service" for measuring
# `heapsight record --serve` in sampling mode (docs/performance.md): a
# request loop over an in-memory SQLite database (inserts, indexed
# lookups, an aggregate, JSON encoding of the result), a fixed number of
# requests so that CPU times compare. malloc-heavy through SQLite and
# CPython's larger objects.
#   service_workload.py REQUESTS
import json
import sqlite3
import sys

requests = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
db = sqlite3.connect(":memory:")
db.execute("create table item (id integer primary key, user integer, name text, body blob)")
db.execute("create index item_user on item(user)")
cache = {}
for n in range(requests):
    user = n % 997
    db.execute("insert into item (user, name, body) values (?, ?, ?)",
               (user, f"name-{n}", b"x" * (64 + n % 900)))
    rows = db.execute("select id, name, length(body) from item where user = ? "
                      "order by id desc limit 20", (user,)).fetchall()
    reply = json.dumps({"user": user, "items": rows})
    cache[n % 5000] = reply  # a bounded cache: the live heap levels off
    if n % 1000 == 999:
        db.execute("delete from item where id < ?", (n - 20000,))
        db.commit()
print(len(cache))
