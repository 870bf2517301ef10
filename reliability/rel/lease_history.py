"""Leases in the load's history: what was observed of each lease, the two intervals derived
from it for the checks of rel/history.py, and the checks that concern leases alone.

What the load observes of a lease (token T, owner O, request R):

  calls        lease_*/try_lease_* calls that returned T, [t0, t1] each (history.Rec, "lease-call")
  renewals     renew_lease(T[, ttl]) -> true / false, made one after the other by one thread
  releases     release_lease(T) -> true / false, from any connection
  owner        release_leases(O) -> n, from any connection
  validations  BEGIN; lease_valid(T) -> true / false; ...; COMMIT
  listings     snapshots of lockhier.leases (with clock_timestamp()), and reads of one token's row

How each relates to the lock manager (the keeper is one process answering one question at a
time; docs/leases.md, src/engine/keeper.rs):

  * A grant takes the locks, journals, lists the lease, then answers; an expiry or a release
    journals, gives the locks back, then unlists. So whenever the keeper answers a question, a
    lease is listed exactly when its locks are held. A renewal or release that returned true,
    and a call that returned T, saw T listed while the keeper answered: T's locks were held at
    an instant of that call, hence (a lease never comes back once released: check L1) from the
    first return of T to at least that call's start.
  * lease_valid(T) -> true holds T's fence until its transaction ends, and neither a release nor
    an expiry happens meanwhile: T is held until the COMMIT/ROLLBACK is sent.
  * A listing proves less: a backend may read the list between the keeper's giving the locks
    back and its unlisting the lease. So listings never extend a hold; only their absence counts:
    T missing from a listing sent after T was first returned means T's locks were gone by the
    time the listing returned.
  * The keeper releases T when its clock reaches T's expires_at (or on a release), not before.
    A grant sets expires_at = now + ttl; a renewal now + ttl (the lease's own ttl when NULL: it
    may move the expiry earlier); a re-entrant grant max(expires_at, now + ttl), never earlier:
    ignoring it below only shortens the sure interval. The keeper's clock is the server's wall
    clock and the client's is monotonic: every snapshot brackets the offset between them
    (clock_timestamp() was read during its round trip), off_lo <= wall - mono <= off_hi, with
    w = off_hi - off_lo the uncertainty. A grant or a renewal with ttl d whose call was sent at
    mono t0 then keeps T surely held until mono t0 + d - w, unless something releases it.

Sure interval (check (a)): from the first return of T to
    END = max(last positive observation, min(expiry bound, first release call that may hit T))
where a release call may hit T when it is release_lease(T) or release_leases(O) and returned
after T's first call was sent; its start bounds the interval. Renewals of one lease are made by
one thread, one after the other, so the expiry bound follows them in order; if two ever
overlapped, or the snapshots do not bracket one offset (the wall clock stepped), the expiry
bound is not used for that lease (resp. at all) and only observations count.

Longest interval (check (b)): from the sending of the first call that returned T to the first
observation that T was gone, as returned: a renewal, release or validation that returned false,
a release that returned true, a release_leases(O) or a listing sent after T was first returned
and not listing it.

Checks on leases alone:
  L1  once seen gone, a lease is never seen held again (returned, renewed, released, validated,
      listed);
  L2  a lease is never seen gone while surely held (a renewal, release or validation returning
      false, a listing without it), and release_leases(O) counts at least the leases of O surely
      held throughout its call and at most those that may have been held then;
  L3  re-entrance: a call of the owner of a lease surely held throughout the call, for the same
      request, returns that lease's token; a token belongs to one owner and one request;
  L4  tokens grow: a new token is larger than every token returned before its call was sent.
"""

import bisect
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional

from . import history, oracle

INF = math.inf


@dataclass
class Obs:
    what: str                 # renew | release | valid | owner | listed
    conn: int
    t0: float
    t1: float
    token: Optional[int] = None
    owner: Optional[str] = None
    ttl: Optional[float] = None          # renew: the ttl asked for in seconds (None: its own)
    result: object = None                # True/False, release_leases: the count; None: an error
    error: str = ""
    held_until: Optional[float] = None   # valid -> true: when the end of its transaction was sent
    late: Optional[float] = None         # renew: sent this long after (+) or before (-) the
    #                                      lease's expires_at, read just before (client wall clock)
    past_expiry: bool = False            # valid: seen listed past its expires_at inside the transaction
    fenced: bool = False                 # renew: made while a transaction that validated it was open

    def __str__(self):
        what = {"renew": f"renew_lease({self.token}, ttl={self.ttl})",
                "release": f"release_lease({self.token})", "valid": f"lease_valid({self.token})",
                "owner": f"release_leases({self.owner!r})",
                "listed": f"lockhier.leases row of {self.token}"}[self.what]
        return (f"conn {self.conn} {what} -> {self.result if self.error == '' else self.error} "
                f"call=[{self.t0:.6f},{self.t1:.6f}]"
                + (f" held until {self.held_until:.6f}" if self.held_until is not None else ""))


@dataclass
class Snap:
    t0: float
    t1: float
    wall: float                          # clock_timestamp() of the snapshot, epoch seconds
    tokens: FrozenSet[int]
    expiry: Dict[int, float] = field(default_factory=dict)   # token -> expires_at, epoch seconds

    def __str__(self):
        return f"snapshot [{self.t0:.6f},{self.t1:.6f}] tokens {sorted(self.tokens)}"


def calibrate(snaps):
    """(off_lo, off_hi) with off_lo <= wall - mono <= off_hi, or None if the snapshots bracket
    no single offset (the wall clock stepped during the run) or there are none."""
    if not snaps:
        return None
    lo = max(s.wall - s.t1 for s in snaps)
    hi = min(s.wall - s.t0 for s in snaps)
    return (lo, hi) if lo <= hi else None


@dataclass
class LeaseReport:
    calib: Optional[tuple] = None
    leases: int = 0
    never_surely_held: int = 0
    calls: int = 0
    new_grants: int = 0
    reentrant_returns: int = 0
    refused: int = 0
    renew_true: int = 0
    renew_false: int = 0
    renew_after_expiry_won: int = 0      # sent after expires_at (client clock), returned true
    renew_after_expiry_fenced: int = 0   # ... of which while a validating transaction held it
    renew_after_expiry_lost: int = 0     # sent after expires_at, returned false
    renew_before_expiry_racing: int = 0  # sent less than 20 ms before expires_at
    release_true: int = 0
    release_false: int = 0
    owner_calls: int = 0
    owner_released: int = 0
    valid_true: int = 0
    valid_false: int = 0
    valid_past_expiry: int = 0
    expired_on_their_own: int = 0
    expiry_lateness: List[float] = field(default_factory=list)
    chains_disabled: int = 0
    l1: list = field(default_factory=list)
    l2: list = field(default_factory=list)
    l3: list = field(default_factory=list)
    l4: list = field(default_factory=list)

    def lateness_note(self):
        if not self.expiry_lateness:
            return "no lateness measured"
        xs = sorted(self.expiry_lateness)
        return (f"first snapshot without an expired lease came {statistics.median(xs) * 1000:.0f} ms "
                f"(median), {xs[-1] * 1000:.0f} ms (max) after its expires_at")


def _add(lst, item, cap=20):
    if len(lst) < cap:
        lst.append(item)


def analyse(calls, obs, snaps):
    """Derive one history.Rec (kind "lease") per token from the lease calls (history.Rec,
    kind "lease-call"), the other observations (Obs) and the snapshots (Snap); run L1-L4.
    Returns (lease records, LeaseReport)."""
    calib = calibrate(snaps)
    rep = LeaseReport(calib=calib)
    rep.calls = len(calls)
    snaps = sorted(snaps, key=lambda s: s.t0)
    snap_t0 = [s.t0 for s in snaps]
    listed_in = defaultdict(list)            # token -> indices of the snapshots listing it
    for i, s in enumerate(snaps):
        for t in s.tokens:
            listed_in[t].append(i)

    by_token = defaultdict(list)
    for c in calls:
        rep.refused += c.outcome == "refused"
        if c.token is not None:
            by_token[c.token].append(c)
    per = defaultdict(lambda: defaultdict(list))
    by_owner = defaultdict(list)
    for o in obs:
        if o.what == "owner":
            by_owner[o.owner].append(o)
            rep.owner_calls += 1
            rep.owner_released += o.result if isinstance(o.result, int) else 0
        elif o.token is not None:
            per[o.token][o.what].append(o)
        if o.what == "renew":
            rep.renew_true += o.result is True
            rep.renew_false += o.result is False
            if o.late is not None and o.late >= 0:
                rep.renew_after_expiry_won += o.result is True
                rep.renew_after_expiry_fenced += o.result is True and o.fenced
                rep.renew_after_expiry_lost += o.result is False
            elif o.late is not None and o.late > -0.020:
                rep.renew_before_expiry_racing += 1
        elif o.what == "release":
            rep.release_true += o.result is True
            rep.release_false += o.result is False
        elif o.what == "valid":
            rep.valid_true += o.result is True
            rep.valid_false += o.result is False
            rep.valid_past_expiry += o.past_expiry

    leases = {}
    info = {}
    for T, cs in sorted(by_token.items()):
        cs.sort(key=lambda c: c.t_call0)
        owner, req = cs[0].owner, cs[0].req
        for c in cs[1:]:
            if c.owner != owner or c.req != req:
                _add(rep.l3, f"token {T} returned for owner {owner!r} {req} and for owner "
                             f"{c.owner!r} {c.req}: {c}")
        first_sent = cs[0].t_call0
        sure_start = min(c.t_call1 for c in cs)
        ttl_min = min(c.ttl for c in cs)
        o = per[T]
        renews = sorted(o["renew"], key=lambda r: r.t0)
        releases, valids, listed = o["release"], o["valid"], o["listed"]
        owner_calls = by_owner[owner]

        # positive observations: (instant up to which T was surely held, what)
        pos = ([(c.t_call0, c) for c in cs] + [(r.t0, r) for r in renews if r.result is True]
               + [(r.t0, r) for r in releases if r.result is True]
               + [(v.held_until, v) for v in valids if v.result is True])
        # observations that T was gone: (returned by, what)
        gone = ([(r.t1, r) for r in renews if r.result is False]
                + [(r.t1, r) for r in releases if r.result is not None]
                + [(v.t1, v) for v in valids if v.result is False]
                + [(x.t1, x) for x in owner_calls if x.result is not None and x.t0 >= sure_start]
                + [(x.t1, x) for x in listed if x.result is False and x.t0 >= sure_start])
        first_missing = None
        i = bisect.bisect_left(snap_t0, sure_start)
        mine = listed_in.get(T, [])
        k = bisect.bisect_left(mine, i)
        while k < len(mine) and mine[k] == i:
            i, k = i + 1, k + 1
        if i < len(snaps):
            first_missing = snaps[i]
            gone.append((first_missing.t1, first_missing))
        present_end = min((t for t, _ in gone), default=INF)

        # release calls that may have hit T: their start bounds the sure interval
        hits = ([(r.t0, r) for r in releases if r.t1 >= first_sent]
                + [(x.t0, x) for x in owner_calls if x.t1 >= first_sent])
        # the expiry bound
        chain = -INF
        if calib is not None:
            w = calib[1] - calib[0]
            chain = min(c.t_call0 + c.ttl for c in cs) - w
            if any(b.t0 < a.t1 for a, b in zip(renews, renews[1:])):
                chain = -INF
                rep.chains_disabled += 1
            else:
                for r in renews:
                    if r.result is True:
                        d = r.ttl if r.ttl is not None else ttl_min
                        chain = max(r.t0, r.t0 + d - w)
                    elif r.result is False:
                        break
                    else:
                        chain = min(chain, r.t0)
                        break
        pos_max = max(t for t, _ in pos)

        def end_without(x=None, pos_max=pos_max, hits=hits, chain=chain):
            bound = min((t for t, h in hits if h is not x), default=INF)
            return max(pos_max, min(chain, bound))

        end = end_without()
        rec = history.Rec(conn=-1 - T, pid=0, seq=0, scope="lease", fn="lease", req=req, wait=None,
                          t_call0=first_sent, t_call1=sure_start, outcome="granted",
                          t_rel0=end, t_rel1=present_end, kind="lease", owner=owner, token=T)
        leases[T] = rec
        info[T] = (end_without, first_missing)
        rep.never_surely_held += end < sure_start

        # L1: nothing positive (or a listing) after T was seen gone
        if gone:
            first_gone_t, first_gone = min(gone, key=lambda g: g[0])
            later = [(t0, x) for t0, x in
                     [(c.t_call0, c) for c in cs] + [(r.t0, r) for r in renews if r.result is True]
                     + [(r.t0, r) for r in releases if r.result is True]
                     + [(v.t0, v) for v in valids if v.result is True]
                     + [(x.t0, x) for x in listed if x.result is True]
                     + ([(snaps[mine[-1]].t0, snaps[mine[-1]])] if mine else [])
                     if t0 > first_gone_t]
            for _, x in later[:1]:
                _add(rep.l1, f"lease {T} of {owner!r} seen gone ({first_gone}) and then held ({x})")

        # L2: nothing negative while surely held
        negatives = ([r for r in renews if r.result is False] + [r for r in releases if r.result is False]
                     + [v for v in valids if v.result is False]
                     + [x for x in listed if x.result is False])
        for n in negatives:
            if sure_start <= n.t0 and end_without(n) >= n.t1:
                _add(rep.l2, f"lease {T} of {owner!r} surely held [{sure_start:.6f},{end_without(n):.6f}] "
                             f"but {n}")
        if first_missing is not None and end >= first_missing.t1:
            _add(rep.l2, f"lease {T} of {owner!r} surely held [{sure_start:.6f},{end:.6f}] but missing "
                         f"from {first_missing}")

        # counted as expired on its own when no release call could have ended it
        if present_end < INF and not any(h.t0 < present_end for _, h in hits):
            rep.expired_on_their_own += 1
            if mine and first_missing is not None:
                last = snaps[mine[-1]]
                if T in last.expiry and last.t0 < first_missing.t0:
                    rep.expiry_lateness.append(first_missing.wall - last.expiry[T])

    rep.leases = len(leases)

    # L2: release_leases counts
    by_owner_tokens = defaultdict(list)
    for T, r in leases.items():
        by_owner_tokens[r.owner].append(T)
    for owner_name, xs in by_owner.items():
        for x in xs:
            if x.result is None:
                continue
            sure, maybe = [], []
            for T in by_owner_tokens.get(owner_name, []):
                r = leases[T]
                end_without = info[T][0]
                if r.t_call1 <= x.t0 and end_without(x) >= x.t1:
                    sure.append(T)
                if r.t_call0 <= x.t1 and r.t_rel1 >= x.t0:
                    maybe.append(T)
            if not len(sure) <= x.result <= len(maybe):
                _add(rep.l2, f"{x}: {len(sure)} leases of the owner surely held throughout the call "
                             f"{sure}, {len(maybe)} maybe held {maybe}")

    # L3: re-entrance
    by_request = defaultdict(list)
    for T, r in leases.items():
        by_request[(r.owner, r.req)].append(r)
    for c in calls:
        if c.outcome == "error":
            continue
        if c.token is not None and len(by_token[c.token]) > 1 and c is not by_token[c.token][0]:
            rep.reentrant_returns += 1
        for r in by_request.get((c.owner, c.req), []):
            if r.token != c.token and r.t_call1 <= c.t_call0 and r.t_rel0 >= c.t_call1:
                _add(rep.l3, f"{c} while lease {r.token} of the same owner and request was surely held "
                             f"[{r.t_call1:.6f},{r.t_rel0:.6f}]: its token should have come back")
    rep.new_grants = len(leases)

    # L4: new tokens grow
    order = sorted(leases.values(), key=lambda r: r.t_call1)
    returns = [r.t_call1 for r in order]
    prefix_max, m = [], -INF
    for r in order:
        m = max(m, r.token)
        prefix_max.append((m, r))
    for r in leases.values():
        n = bisect.bisect_left(returns, r.t_call0)
        if n and prefix_max[n - 1][0] > r.token:
            _add(rep.l4, f"lease {r.token} (first call sent {r.t_call0:.6f}) is smaller than a token "
                         f"returned before: {prefix_max[n - 1][0]}")
    return list(leases.values()), rep


def valid_timeouts_unexplained(calls, obs):
    """lease_valid(T) that failed with 55P03 (lock_timeout) although no release that could end
    T (release_lease(T), or release_leases of T's owner) was in flight during the call: only
    such a release, queued for or holding T's fence, makes lease_valid wait."""
    owner_of = {c.token: c.owner for c in calls if c.token is not None}
    releases = [o for o in obs if o.what in ("release", "owner")]
    timeouts = [o for o in obs if o.what == "valid" and o.error.startswith("55P03")]

    def in_flight(v, r):
        hits = r.token == v.token if r.what == "release" else r.owner == owner_of.get(v.token)
        return hits and r.t0 < v.t1 and r.t1 > v.t0

    return len(timeouts), [v for v in timeouts if not any(in_flight(v, r) for r in releases)]


def self_test():
    """The lease derivations and checks on made-up histories whose verdicts are known; the
    client's monotonic clock and the server's wall clock agree exactly here (offset 0)."""
    R = oracle.make
    field_x = R((1, 1, 1), "x", "exclusive")
    app_share = R((1,), "all", "share")
    snaps0 = [Snap(0.0, 0.0, 0.0, frozenset()), Snap(50.0, 50.0, 50.0, frozenset())]

    def call(conn, req, owner, t0, t1, token, ttl=1.0, outcome=None):
        return history.Rec(conn, 100 + conn, 0, "lease", "lease_field", req, "0", t0, t1,
                           outcome or ("granted" if token is not None else "refused"),
                           kind="lease-call", owner=owner, token=token, ttl=ttl)

    def lock(conn, req, c1, r0, c0=None, outcome="granted"):
        return history.Rec(conn, 100 + conn, 0, "xact", "lock", req, "0",
                           c1 - 0.001 if c0 is None else c0, c1, outcome, t_rel0=r0,
                           t_rel1=None if r0 is None else r0 + 0.001)

    def lease_of(calls, obs, snaps=snaps0):
        leases, rep = analyse(calls, obs, snaps)
        return {r.token: r for r in leases}, rep

    out = []
    # a lease of ttl 1 s granted at 1.0: surely held until ~2.0 (its expiry), not beyond
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)], [])
    out.append(("leases: a lease is surely held from its grant to its expiry",
                abs(ls[7].t_call1 - 1.01) < 1e-9 and abs(ls[7].t_rel0 - 2.0) < 1e-9))
    a = history.check_no_conflicting_overlap(list(ls.values()) + [lock(1, field_x, 1.5, 1.6)])
    b = history.check_no_conflicting_overlap(list(ls.values()) + [lock(1, field_x, 2.01, 2.1)])
    out.append(("(a) flags a lock granted while a conflicting lease is surely held, accepts it "
                "after the lease's expires_at", len(a.violations) == 1 and not b.violations))
    # renewed after its expiry time, returning true: never free, so held through the renewal
    # and 1 s beyond; a lock granted in between is a violation
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)],
                       [Obs("renew", 0, 2.05, 2.06, token=7, result=True)])
    a = history.check_no_conflicting_overlap(list(ls.values()) + [lock(1, field_x, 2.02, 2.03)])
    out.append(("(a) flags a lock granted between a lease's expires_at and a renewal that "
                "returned true (the lease was never free)",
                len(a.violations) == 1 and abs(ls[7].t_rel0 - 3.05) < 1e-9))
    # a release from another connection ends the sure interval at its sending
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7, ttl=10.0)],
                       [Obs("release", 5, 1.5, 1.51, token=7, result=True)])
    out.append(("leases: a release ends the sure interval when sent, the longest when returned",
                abs(ls[7].t_rel0 - 1.5) < 1e-9 and abs(ls[7].t_rel1 - 1.51) < 1e-9))
    # lease_valid -> true keeps it held until the end of its transaction, past its expiry
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)],
                       [Obs("valid", 2, 1.9, 1.91, token=7, result=True, held_until=2.3)])
    out.append(("leases: lease_valid -> true keeps the lease surely held until its transaction "
                "ends", abs(ls[7].t_rel0 - 2.3) < 1e-9))
    # L1: listed again after a renewal returned false
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)],
                       [Obs("renew", 0, 2.2, 2.21, token=7, result=False),
                        Obs("listed", 1, 2.3, 2.31, token=7, result=True)])
    out.append(("L1 flags a lease listed after a renewal returned false", len(rep.l1) == 1))
    # L2: a renewal false while surely held; a snapshot missing it while surely held
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)],
                       [Obs("renew", 0, 1.5, 1.51, token=7, result=False)])
    out.append(("L2 flags a renewal that returned false while the lease was surely held",
                len(rep.l2) == 1))
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)], [],
                       snaps0 + [Snap(1.5, 1.51, 1.505, frozenset())])
    out.append(("L2 flags a snapshot without a lease surely held", len(rep.l2) == 1))
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7)],
                       [Obs("renew", 0, 2.01, 2.02, token=7, result=False)],
                       snaps0 + [Snap(1.5, 1.51, 1.505, frozenset({7})), Snap(2.5, 2.51, 2.505, frozenset())])
    out.append(("L1/L2 accept a renewal lost to the expiry and a lease gone after it",
                not rep.l1 and not rep.l2 and abs(ls[7].t_rel1 - 2.02) < 1e-9))
    # L2: release_leases counting fewer than were surely held
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7, ttl=10.0),
                        call(1, app_share, "a", 1.0, 1.02, 8, ttl=10.0)],
                       [Obs("owner", 3, 1.5, 1.51, owner="a", result=1)])
    ls2, rep2 = lease_of([call(0, field_x, "a", 1.0, 1.01, 7, ttl=10.0),
                          call(1, app_share, "b", 1.0, 1.02, 8, ttl=10.0)],
                         [Obs("owner", 3, 1.5, 1.51, owner="a", result=1)])
    out.append(("L2 flags release_leases counting fewer leases than its owner surely held, "
                "accepts the right count", len(rep.l2) == 1 and not rep2.l2))
    # L3: a new token for a request its owner surely held; the same token accepted
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 7), call(1, field_x, "a", 1.2, 1.21, 9)], [])
    ls2, rep2 = lease_of([call(0, field_x, "a", 1.0, 1.01, 7), call(1, field_x, "a", 1.2, 1.21, 7)], [])
    ls3, rep3 = lease_of([call(0, field_x, "a", 1.0, 1.01, 7), call(1, field_x, "b", 1.2, 1.21, 7)], [])
    out.append(("L3 flags a second token for an owner's request already held and a token "
                "returned to another owner, accepts the token coming back",
                len(rep.l3) >= 1 and not rep2.l3 and rep2.reentrant_returns == 1 and len(rep3.l3) >= 1))
    a = history.check_no_conflicting_overlap(list(ls.values()))
    out.append(("(a) flags two tokens of one owner's request held at the same time",
                len(a.reentry_violations) == 1))
    # lease_valid's lock timeout: explained by a release of that lease (or of its owner's
    # leases) in flight, not by a release of another lease or one that had ended
    calls = [call(0, field_x, "a", 1.0, 1.01, 7), call(1, app_share, "b", 1.0, 1.01, 8)]
    timeout = Obs("valid", 2, 2.0, 2.06, token=7, error="55P03 canceling statement due to lock timeout")
    verdicts = [valid_timeouts_unexplained(calls, [timeout, r])[1] for r in
                (Obs("release", 3, 1.9, 2.5, token=7, result=True), Obs("owner", 3, 1.9, 2.5, owner="a", result=1),
                 Obs("release", 3, 1.9, 2.5, token=8, result=True), Obs("owner", 3, 1.9, 2.5, owner="b", result=1),
                 Obs("release", 3, 1.0, 1.5, token=7, result=True))]
    out.append(("lease_valid's lock timeout: accepted while a release of that lease or of its owner's "
                "leases is in flight, flagged with only other or earlier releases",
                [len(v) for v in verdicts] == [0, 0, 1, 1, 1]))
    # L4: a token smaller than one returned before its call was sent
    ls, rep = lease_of([call(0, field_x, "a", 1.0, 1.01, 9, ttl=0.1),
                        call(1, field_x, "b", 1.5, 1.51, 8, ttl=0.1)], [])
    out.append(("L4 flags a new token smaller than an earlier one", len(rep.l4) == 1))
    # (b): a lease refused with a conflicting lease present; refused by nothing; refused only by
    # the same owner's identical lease (which should have been returned)
    ls, _ = lease_of([call(0, field_x, "a", 1.0, 1.01, 7, ttl=10.0)], [])
    held = list(ls.values())
    ok_ref = history.check_refusals_justified(held + [call(1, app_share, "b", 1.5, 1.51, None)])
    bad_ref = history.check_refusals_justified(held + [call(1, R((2,), "all", "share"), "b", 1.5, 1.51, None)])
    same_ref = history.check_refusals_justified(held + [call(1, field_x, "a", 1.5, 1.51, None)])
    out.append(("(b) accepts a lease refused by a conflicting lease, flags one refused by nothing "
                "and one refused only by its owner's identical lease",
                not ok_ref.unexplained and ok_ref.by_lease == 1 and len(bad_ref.unexplained) == 1
                and len(same_ref.unexplained) == 1))
    # (b'): a lock refusal whose DETAIL names a lease not in its way
    r = lock(2, field_x, 1.51, None, c0=1.5, outcome="refused")
    r.detail_leases = ((7, "a"),)
    good = history.check_refusals_justified(held + [r])
    r2 = lock(2, field_x, 1.51, None, c0=1.5, outcome="refused")
    r2.detail_leases = ((7, "b"), (8, "a"))
    bad = history.check_refusals_justified(held + [r2])
    out.append(("(b') accepts a DETAIL naming the lease in the way, flags one naming another "
                "owner or token", not good.detail_leases_wrong and len(bad.detail_leases_wrong) == 2))
    # the clock calibration: a snapshot that brackets no common offset disables the expiry bound
    one = calibrate([Snap(0.0, 0.002, 100.001, frozenset())])
    two = calibrate([Snap(0.0, 0.002, 100.001, frozenset()), Snap(1.0, 1.001, 101.0015, frozenset())])
    out.append(("leases: the wall-clock offset is bracketed by the snapshots, tighter with more of "
                "them, and a clock step is noticed",
                abs(one[0] - 99.999) < 1e-9 and abs(one[1] - 100.001) < 1e-9
                and abs(two[0] - 100.0005) < 1e-9 and abs(two[1] - 100.001) < 1e-9
                and calibrate([Snap(0.0, 0.001, 100.0, frozenset()),
                               Snap(1.0, 1.001, 103.0, frozenset())]) is None))
    return out
