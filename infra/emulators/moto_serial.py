"""moto server answering one request at a time.

moto's backends are not thread-safe: under the stock threaded server two concurrent
conditional writes (DynamoDB `UpdateItem ... ConditionExpression`) can both pass their
condition, which real DynamoDB never allows. The tests assert atomicity (a blast-radius
budget is never exceeded), so they run moto serially: same arguments as `moto_server`.
"""
import sys

import moto.server as server

_run_simple = server.run_simple


def _serial(*args, **kwargs):
    kwargs["threaded"] = False
    return _run_simple(*args, **kwargs)


server.run_simple = _serial

if __name__ == "__main__":
    server.main(sys.argv[1:])
