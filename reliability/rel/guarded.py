"""The guarded table's checks: what the mixed-nemesis load (rel/nemesis_load.py) wrote under
leases, checked against what its clients saw, with no wall-clock window anywhere.

Workers append rows to a table in the documented fencing pattern (docs/leases.md, "Fencing"):

    BEGIN; SELECT lockhier.lease_valid(T); -- true, or stop here
    UPDATE rel_guard_counter SET n = n + 1 RETURNING n; INSERT INTO rel_guarded (n, token, ...);
    COMMIT;

Every such transaction updates the one counter row, which it keeps locked until it ends, so `n`
orders the committed rows exactly as their commits (a later writer waits for the earlier one's
commit and then reads its value). The rows in the table are the truth: a write whose outcome the
client never learnt (the connection was lost at COMMIT) may or may not be there, as Jepsen says
of an unknown outcome, and the checks only read what is.

  G1  rows under conflicting leases do not interleave: for conflicting leases S < T (tokens),
      every row of S comes before every row of T in commit order. A lease is granted only once
      every conflicting lease is gone, and a validated transaction keeps its lease until it ends,
      so S's rows commit before T exists; tokens grow, so the earlier lease has the smaller one.
  G2  no write is accepted from a holder whose lease had gone: a row of T whose transaction began
      after the client had seen T gone (lease_valid(T), renew_lease(T) false; release_lease(T)
      answered; a conflicting lease granted) is a violation. The one exception is the documented
      one: a lease whose release was never journaled (the journal's file system was full) or
      whose release record was damaged may come back after a restart, until its ttl; the seen-gone
      observations of its own calls are then not used (a conflicting lease granted later still is:
      the journal proves T released, and replay keeps the later lease).
  G3  tokens grow, across restarts: a new token is larger than every token returned before its
      call was sent. A token first seen through re-entrance may have been granted to an earlier
      call of the same worker for the same request that failed (the keeper granted and journaled
      it, and then the answer was lost to a fault): that call, if it was sent within its ttl (and
      a second) of the first sighting, is when the token was asked for. And a token is one lease:
      it is never returned to two workers, or for two requests.
"""

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

from . import oracle


@dataclass
class Grant:
    """A lease call that returned a token: the token, the request (oracle form), when sent and
    returned, and whether the token was new to the worker (not a re-entrant return)."""
    worker: int
    token: int
    req: object
    t0: float
    t1: float


@dataclass
class Asked:
    """A lease call that failed (an error, a lost connection): its outcome is unknown, and a grant
    it may have made is returned later to the same owner's identical request (re-entrance)."""
    worker: int
    req: object
    t0: float
    ttl: float


@dataclass
class Gone:
    """An observation, returned at t1, that lease `token` was not held: how, and by which call."""
    token: int
    t1: float
    how: str


@dataclass
class Write:
    """A guarded write attempt: worker, its own sequence number, the token, when BEGIN was sent;
    outcome: 'committed', 'rejected' (lease_valid false), 'unknown' (the connection failed after
    lease_valid returned true) or 'failed' (an error before that)."""
    worker: int
    seq: int
    token: int
    t_begin: float
    outcome: str = "failed"
    stale: str = ""          # why the client expected a rejection ('' when it did not)


@dataclass
class Row:
    n: int
    token: int
    worker: int
    seq: int


@dataclass
class Report:
    rows: int = 0
    tokens_with_rows: int = 0
    conflicting_pairs: int = 0
    g1: list = field(default_factory=list)
    g2: list = field(default_factory=list)
    g3: list = field(default_factory=list)
    orphans: list = field(default_factory=list)     # rows no write attempt of the client explains
    exempt: int = 0                                 # rows after a seen-gone of a may-return lease


_conflicts = {}


def conflicts(a, b):
    """oracle.conflicts, remembered: a run has thousands of leases on a handful of requests."""
    key = (a, b)
    if key not in _conflicts:
        _conflicts[key] = oracle.conflicts(a, b)
    return _conflicts[key]


def _add(lst, item, cap=20):
    if len(lst) < cap:
        lst.append(item)


def check(grants, gones, writes, rows, may_return=frozenset(), failed=()):
    """G1-G3 over one run. grants: [Grant]; gones: [Gone]; writes: [Write]; rows: [Row];
    may_return: tokens whose release may be undone by a restart (see above); failed: [Asked]."""
    rep = Report(rows=len(rows))
    req_of = {}
    for g in grants:
        req_of.setdefault(g.token, g.req)
    by_token = defaultdict(list)
    for r in rows:
        by_token[r.token].append(r.n)
    rep.tokens_with_rows = len(by_token)

    # G1: conflicting leases' rows in commit order
    tokens = sorted(by_token)
    for i, s in enumerate(tokens):
        for t in tokens[i + 1:]:
            rs, rt = req_of.get(s), req_of.get(t)
            if rs is None or rt is None or not conflicts(rs, rt):
                continue
            rep.conflicting_pairs += 1
            if max(by_token[s]) > min(by_token[t]):
                _add(rep.g1, f"leases {s} {rs} and {t} {rt} conflict, but a row of {s} (n={max(by_token[s])}) "
                             f"committed after a row of {t} (n={min(by_token[t])})")

    # G2: a write accepted after its lease was seen gone
    gone_own = defaultdict(list)
    for x in gones:
        gone_own[x.token].append(x)
    # the first conflicting later lease granted: per request, the grants by token, and the
    # earliest return among those above a token
    by_req = defaultdict(list)
    for g in grants:
        by_req[g.req].append(g)
    later = {}
    for q, gs in by_req.items():
        gs.sort(key=lambda g: g.token)
        best, suffix = None, [None] * len(gs)
        for i in range(len(gs) - 1, -1, -1):
            if best is None or gs[i].t1 < best.t1:
                best = gs[i]
            suffix[i] = best
        later[q] = ([g.token for g in gs], suffix)

    def first_conflicting_after(token):
        found = None
        for q, (toks, suffix) in later.items():
            if token in req_of and conflicts(req_of[token], q):
                i = bisect.bisect_right(toks, token)
                if i < len(toks) and (found is None or suffix[i].t1 < found.t1):
                    found = suffix[i]
        return found

    attempt = {(w.worker, w.seq): w for w in writes}
    for r in rows:
        w = attempt.get((r.worker, r.seq))
        if w is None or w.token != r.token:
            _add(rep.orphans, f"row n={r.n} token {r.token} of worker {r.worker} seq {r.seq}: no such write")
            continue
        g = first_conflicting_after(r.token)
        if g is not None and g.t1 < w.t_begin:
            _add(rep.g2, f"row n={r.n} under lease {r.token}, its transaction begun at {w.t_begin:.6f}, after "
                         f"the conflicting lease {g.token} was granted (returned {g.t1:.6f})")
            continue
        own = [x for x in gone_own.get(r.token, []) if x.t1 < w.t_begin]
        if own and r.token in may_return:
            rep.exempt += 1
        elif own:
            x = min(own, key=lambda x: x.t1)
            _add(rep.g2, f"row n={r.n} under lease {r.token}, its transaction begun at {w.t_begin:.6f}, after "
                         f"{x.how} (returned {x.t1:.6f}) showed the lease gone")

    # G3: new tokens grow
    first = {}
    for g in sorted(grants, key=lambda g: g.t0):
        first.setdefault(g.token, g)
    order = sorted(first.values(), key=lambda g: g.t1)
    returns = [g.t1 for g in order]
    prefix, m = [], None
    for g in order:
        m = g.token if m is None else max(m, g.token)
        prefix.append(m)
    # a token is one lease: never returned to two workers or for two requests (a token handed out
    # again would be, whatever the clocks say)
    for g in grants:
        f = first[g.token]
        if (g.worker, g.req) != (f.worker, f.req):
            _add(rep.g3, f"token {g.token} returned to worker {f.worker} for {f.req} and to worker {g.worker} "
                         f"for {g.req}")
    unknown = defaultdict(list)
    for a in failed:
        unknown[(a.worker, a.req)].append(a)
    for g in first.values():
        asked = min([a.t0 for a in unknown.get((g.worker, g.req), []) if g.t0 - a.ttl - 1.0 <= a.t0 < g.t0],
                    default=g.t0)
        k = bisect.bisect_left(returns, asked)
        if k and prefix[k - 1] > g.token:
            _add(rep.g3, f"lease {g.token} (asked for at {asked:.6f}, first returned to a call sent {g.t0:.6f}) "
                         f"is smaller than {prefix[k - 1]}, returned before it was asked for")
    return rep


def self_test():
    """G1-G3 on made-up histories: each catches a planted violation and accepts its correct twin."""
    R = oracle.make
    f1 = R((60, 1, 1), "guard", "exclusive")
    f2 = R((60, 1, 2), "guard", "exclusive")
    table = R((60, 1), "guard", "exclusive")
    tshare = R((60, 1), "guard", "share")
    grants = [Grant(0, 10, f1, 1.0, 1.01), Grant(1, 11, f2, 1.0, 1.02), Grant(1, 12, f1, 3.0, 3.01),
              Grant(2, 13, tshare, 5.0, 5.01), Grant(3, 14, tshare, 5.0, 5.02)]
    writes = [Write(0, 1, 10, 1.1, "committed"), Write(1, 1, 11, 1.2, "committed"),
              Write(0, 2, 10, 1.3, "committed"), Write(1, 2, 12, 3.1, "committed"),
              Write(2, 1, 13, 5.1, "committed"), Write(3, 1, 14, 5.1, "committed"),
              Write(2, 2, 13, 5.2, "committed")]
    good_rows = [Row(1, 10, 0, 1), Row(2, 11, 1, 1), Row(3, 10, 0, 2), Row(4, 12, 1, 2),
                 Row(5, 13, 2, 1), Row(6, 14, 3, 1), Row(7, 13, 2, 2)]
    out = []
    ok = check(grants, [Gone(10, 2.0, "release_lease(10) -> true")], writes, good_rows)
    out.append(("guarded table: a correct history passes G1-G3 (interleaved rows of non-conflicting "
                "leases, two share leases writing at once)",
                not ok.g1 and not ok.g2 and not ok.g3 and not ok.orphans and ok.conflicting_pairs >= 1))
    # G1: a row of lease 10 committed after one of lease 12, which conflicts with it
    bad = good_rows[:3] + [Row(4, 12, 1, 2), Row(8, 10, 0, 3)]
    w = writes + [Write(0, 3, 10, 1.4, "committed")]
    rep = check(grants, [], w, bad)
    out.append(("G1 flags rows of two conflicting leases overlapping in commit order", len(rep.g1) == 1))
    # G2: a write begun after lease_valid(10) said false, accepted
    w = writes + [Write(0, 3, 10, 2.5, "committed", stale="paused past its ttl")]
    gone = [Gone(10, 2.2, "lease_valid(10) -> false")]
    rep = check(grants[:2], gone, w, good_rows[:3] + [Row(8, 10, 0, 3)])
    ex = check(grants[:2], gone, w, good_rows[:3] + [Row(8, 10, 0, 3)], may_return={10})
    out.append(("G2 flags a write accepted after its lease was seen expired (lease_valid false), "
                "accepts it for a lease whose release may come back",
                len(rep.g2) == 1 and not ex.g2 and ex.exempt == 1))
    # G2: a write begun after a conflicting lease was granted, even for a may-return lease
    w = writes + [Write(0, 3, 10, 3.5, "committed")]
    rep = check(grants, [], w, good_rows + [Row(8, 10, 0, 3)], may_return={10})
    out.append(("G2 flags a write accepted after a conflicting later lease was granted",
                any("conflicting lease 12" in v for v in rep.g2)))
    # G3: a token going backwards (after a restart, say)
    rep = check(grants + [Grant(0, 9, f2, 6.0, 6.01)], [], [], [])
    # 21 first seen at 4.0, after 22 was returned, by a worker whose call for the same request
    # failed at 2.0 (ttl 3 s): the keeper may have granted 21 then
    late = [Grant(0, 20, f1, 1.0, 1.01), Grant(1, 22, f2, 3.0, 3.01), Grant(0, 21, table, 4.0, 4.01)]
    ok = check(late, [], [], [], failed=[Asked(0, table, 2.0, 3.0)])
    far = check(late, [], [], [], failed=[Asked(0, table, -5.0, 3.0)])
    again = check(grants + [Grant(2, 12, tshare, 7.0, 7.01)], [], [], [])
    out.append(("G3 flags a token returned again to another worker and request", len(again.g3) == 1))
    out.append(("G3 flags a token smaller than one returned before its call was sent, accepts it when "
                "an earlier call of the same worker and request failed within its ttl (granted, answer "
                "lost), not when that call was longer ago",
                len(rep.g3) == 1 and not ok.g3 and len(far.g3) == 1))
    # a row no write explains
    rep = check(grants, [], writes, good_rows + [Row(9, 11, 7, 7)])
    out.append(("guarded table: flags a row no client wrote", len(rep.orphans) == 1))
    return out


def describe(rep: Report, limit: int = 5) -> Optional[str]:
    return "\n  ".join((rep.g1 + rep.g2 + rep.g3 + rep.orphans)[:limit]) or None
