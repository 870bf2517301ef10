"""The history of a load run and the two checks made on it.

Time stamps are taken with one monotonic clock in the client process, on either side of each
round trip. What the client sees relates to what the server did as follows:

  call sent (t_call0)  <=  server takes / refuses the locks  <=  call returned (t_call1)
  release sent (t_rel0)  <=  server releases the locks  <=  release returned (t_rel1)

Check (a), no conflicting holds at the same time, must not accuse the extension of an overlap
that did not happen, so it uses the *shortest* interval during which the locks were surely
held: [t_call1, t_rel0] (grant returned .. release sent). Every instant of it lies inside the
true hold, so if two such intervals of conflicting requests overlap, the true holds did too:
a reported overlap is always a real one. The error goes the other way only: an overlap shorter
than the round trips can go unseen, which is why the load holds locks for some milliseconds.

Check (b), every refusal had a conflicting request in the way, must not accuse the extension
of an unjustified refusal either, so it uses the *longest* intervals: the refusal happened
somewhere in [t_call0, t_call1] of the refused call, and another request was possibly present
in the lock manager during [t_call0, t_rel1] (granted) or [t_call0, t_call1] (not granted).
If no conflicting request of another connection was present in that sense, none can have
been in the way: a reported unjustified refusal is always a real one.

Which requests count as "in the way" for (b). PostgreSQL's lock manager refuses a NOWAIT
request (and queues a waiting one) not only when a granted lock conflicts but also when a
conflicting lock mode is *awaited* by a process queued ahead (LockAcquireExtended checks the
lock's waitMask before its grantMask). A request that is queued is a request in flight: it
already holds the first steps of its plan and will hold the rest when it is granted, so a
NOWAIT refusal because of it is the documented fair-queue behaviour (blockers_*() even reports
such processes with granted = false). The same goes for a request that is itself refused a
moment later: while it runs it holds a prefix of its plan, and a conflict with part of a plan
implies a conflict with the whole plan, hence (since plans agree with the oracle) an oracle
conflict. So a refusal is justified by any request of another connection that conflicts under
the oracle and was in flight (waiting, holding, or in the middle of being refused) during the
refused call. The report counts separately the refusals that only a not-granted request can
explain, so that a rise in them is visible.

Leases take part in both checks as holders of their own (kind "lease"), beside the requests of
the connections; lease_*() calls take part as requests in flight (kind "lease-call"). A lease's
two intervals, the shortest during which its locks were surely held and the longest during
which they may have been, are derived from what the load observed of it (grants, renewals,
releases, lease_valid, snapshots of lockhier.leases, its ttl): see rel/lease_history.py, which
also holds the checks that only concern leases.
"""

import bisect
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

from . import oracle

PID_IN_DETAIL = re.compile(r"process (\d+)")
LEASE_IN_DETAIL = re.compile(r'held by lease (\d+) of owner "([^"]*)"')


@dataclass
class Rec:
    conn: int                 # which load connection (0..N-1); never the same as another's
    pid: int                  # its backend pid (for matching DETAIL lines)
    seq: int
    scope: str                # 'xact' or 'session'
    fn: str                   # SQL function called
    req: oracle.Req
    wait: Optional[str]
    t_call0: float = 0.0
    t_call1: float = 0.0
    outcome: str = ""         # granted | refused | deadlock | error | withdrawn (a lock_many
                              # request not taken because another of the call was refused)
    error: str = ""
    detail_pids: Tuple[int, ...] = ()
    t_rel0: Optional[float] = None   # held at least until here: release (or failing call) sent
    t_rel1: Optional[float] = None   # released by here: release returned
    nested: bool = False      # a transaction request made while the connection held a session one
    # Leases (rel/lease_history.py). kind "lock": a transaction or session request of one
    # connection (everything above). kind "lease-call": one lease_*/try_lease_* call; it is in
    # flight during the call only (its wait queues in the caller's backend, the keeper takes
    # locks meanwhile); the hold it may have granted is the lease's own record. kind "lease":
    # one lease (one token), held by the keeper for its owner: its own holder, conflicting with
    # every other holder by the oracle. For a lease, t_call0 is the first call that returned its
    # token, t_call1 the first return, t_rel0 the end of the interval it was surely held (it may
    # lie before t_call1: then it was never surely held), t_rel1 the end of the longest interval
    # it may have been held.
    kind: str = "lock"
    owner: Optional[str] = None
    token: Optional[int] = None
    ttl: Optional[float] = None       # lease-call: the ttl asked for, in seconds
    detail_leases: Tuple[Tuple[int, str], ...] = ()

    @property
    def granted(self):
        return self.outcome == "granted"

    @property
    def holds(self):
        """A hold checked by (a): a granted lock request, or a lease surely held for a while."""
        if self.kind == "lease":
            return self.t_rel0 is not None and self.t_rel0 >= self.t_call1
        return self.kind == "lock" and self.granted

    def present_until(self):
        """End of the longest interval the request may have been in the lock manager."""
        if self.kind == "lease-call":
            return self.t_call1
        return self.t_rel1 if self.granted else self.t_call1

    def __str__(self):
        if self.kind == "lease":
            return (f"lease {self.token} of owner {self.owner!r} {self.req}: surely held "
                    f"[{self.t_call1:.6f},{self.t_rel0:.6f}], maybe from {self.t_call0:.6f} to "
                    f"{self.t_rel1:.6f}")
        w = "NULL" if self.wait is None else repr(self.wait)
        extra = ""
        if self.kind == "lease-call":
            extra = f" owner={self.owner!r} ttl={self.ttl} -> token {self.token}"
        return (f"conn {self.conn} #{self.seq} {self.fn}{self.req} wait={w} {self.outcome}{extra} "
                f"call=[{self.t_call0:.6f},{self.t_call1:.6f}]"
                + (f" held=[{self.t_call1:.6f},{self.t_rel0:.6f}] released_by={self.t_rel1:.6f}"
                   if self.granted and self.kind == "lock" else ""))


@dataclass
class OverlapReport:
    holds: int = 0
    lease_holds: int = 0                 # of which leases (the others: lock requests)
    overlapping_pairs: int = 0           # cross-holder pairs whose sure-hold intervals overlap
    overlapping_scope_pairs: int = 0     # ... of which on overlapping scopes (allowed by the oracle)
    lease_lock_pairs: int = 0            # ... of which a lease and a lock request
    lease_lease_pairs: int = 0           # ... of which two leases
    near_misses: int = 0                 # conflicting pairs whose holds were < margin apart
    lease_near_misses: int = 0           # ... of which one at least a lease
    violations: list = field(default_factory=list)
    reentry_violations: list = field(default_factory=list)   # two tokens for one owner's same request


def check_no_conflicting_overlap(recs, near_margin=0.002):
    """(a): no two conflicting requests of different holders held at the same time. A holder is a
    connection (its transaction and session requests) or a lease (one token). Two leases of one
    owner for the same request held at the same time are a violation too: the second request
    should have got the first one's token back."""
    rep = OverlapReport()
    held = sorted((r for r in recs if r.holds), key=lambda r: r.t_call1)
    rep.holds = len(held)
    rep.lease_holds = sum(r.kind == "lease" for r in held)
    active = []  # holds whose sure-hold interval may still touch later ones
    for r in held:
        s, e = r.t_call1, r.t_rel0
        assert e is not None and s <= e, f"bad interval {r}"
        active = [x for x in active if x.t_rel0 + near_margin > s]
        for q in active:
            if q.conn == r.conn:
                continue
            leases = (q.kind == "lease") + (r.kind == "lease")
            # q started no later than r (sorted), so they overlap iff q ends after r starts.
            overlap = min(e, q.t_rel0) > max(s, q.t_call1)
            conflict = oracle.conflicts(r.req, q.req)
            if overlap:
                rep.overlapping_pairs += 1
                rep.lease_lock_pairs += leases == 1
                rep.lease_lease_pairs += leases == 2
                if conflict:
                    rep.violations.append((q, r))
                elif oracle.scopes_overlap(r.req, q.req):
                    rep.overlapping_scope_pairs += 1
                if leases == 2 and q.owner == r.owner and q.req == r.req:
                    rep.reentry_violations.append((q, r))
            elif conflict:
                rep.near_misses += 1
                rep.lease_near_misses += leases > 0
        active.append(r)
    return rep


@dataclass
class RefusalReport:
    refusals: int = 0
    lease_refusals: int = 0      # of which lease calls
    deadlocks: int = 0
    by_granted: int = 0          # explained by a conflicting request that was granted
    by_lease: int = 0            # ... of which by a lease
    by_in_flight_only: int = 0   # explained only by conflicting requests not granted (queued / being refused)
    unexplained: list = field(default_factory=list)
    detail_pids_checked: int = 0
    detail_pids_wrong: list = field(default_factory=list)
    detail_leases_checked: int = 0
    detail_leases_wrong: list = field(default_factory=list)


def _justifies(r, q):
    """Whether q, present during r's call and conflicting with it by the oracle, can explain r's
    refusal. The requests of r's own connection never stand in its way, except for a lease
    request (the lease would be the keeper's, so this connection's locks are in its way too). A
    lease of the same owner for the very same request does not refuse a lease request: it
    returns that lease's token (re-entrant)."""
    if q is r:
        return False
    if r.kind == "lock" and q.kind != "lease" and q.conn == r.conn:
        return False
    if r.kind == "lease-call" and q.kind == "lease" and q.owner == r.owner and q.req == r.req:
        return False
    return True


def check_refusals_justified(recs):
    """(b): every refusal (and deadlock victim) had a conflicting request of another holder in
    flight during the refused call; and each process and each lease its error DETAIL names had
    one too."""
    rep = RefusalReport()
    # Leases can be present for most of the run; they are few, so they are scanned apart from
    # the connections' requests, which are found by their start times.
    leases = [r for r in recs if r.kind == "lease"]
    present = sorted((r for r in recs if r.kind != "lease"), key=lambda r: r.t_call0)
    starts = [r.t_call0 for r in present]
    longest = max((r.present_until() - r.t_call0 for r in present), default=0.0)
    for r in recs:
        if r.kind == "lease" or r.outcome not in ("refused", "deadlock"):
            continue
        rep.refusals += r.outcome == "refused"
        rep.lease_refusals += r.outcome == "refused" and r.kind == "lease-call"
        rep.deadlocks += r.outcome == "deadlock"
        lo, hi = r.t_call0, r.t_call1
        # candidates: present interval [q.t_call0, q.present_until()] overlaps [lo, hi]
        end = bisect.bisect_right(starts, hi)
        begin = bisect.bisect_left(starts, lo - longest)
        near = [q for q in present[begin:end] if q.present_until() >= lo]
        near += [q for q in leases if q.t_call0 <= hi and q.present_until() >= lo]
        conflicting = [q for q in near if q is not r and oracle.conflicts(r.req, q.req)]
        cands = [q for q in conflicting if _justifies(r, q)]
        holders = [q for q in cands if q.kind == "lease" or (q.kind == "lock" and q.granted)]
        if holders:
            rep.by_granted += 1
            rep.by_lease += any(q.kind == "lease" for q in holders)
        elif cands:
            rep.by_in_flight_only += 1
        else:
            rep.unexplained.append(r)
        for pid in r.detail_pids:
            rep.detail_pids_checked += 1
            if not any(q.pid == pid and q.kind != "lease" for q in cands):
                rep.detail_pids_wrong.append((r, pid))
        for token, owner in r.detail_leases:
            # Named after the refusal, from the leases then listed: any conflicting lease
            # present during the call may be named (one of the same owner and request too).
            rep.detail_leases_checked += 1
            if not any(q.kind == "lease" and q.token == token and q.owner == owner for q in conflicting):
                rep.detail_leases_wrong.append((r, (token, owner)))
    return rep


def pids_in_detail(detail):
    return tuple(int(p) for p in PID_IN_DETAIL.findall(detail or ""))


def leases_in_detail(detail):
    return tuple((int(t), o) for t, o in LEASE_IN_DETAIL.findall(detail or ""))


def self_test():
    """The checkers on made-up histories whose verdicts are known. Returns a list of
    (description, ok) pairs; each must be True for the load check's verdict to mean anything."""
    R = oracle.make
    x_app = R((1,), "all", "exclusive")
    s_field = R((1, 1, 1), "import", "share")
    s_field2 = R((1, 1, 1), "import", "share")
    other = R((2,), "all", "exclusive")

    def g(conn, req, c0, c1, r0, r1, pid=None):
        return Rec(conn, pid or 100 + conn, 0, "xact", "lock", req, "0", c0, c1, "granted",
                   t_rel0=r0, t_rel1=r1)

    def refused(conn, req, c0, c1, pids=()):
        return Rec(conn, 100 + conn, 0, "xact", "lock", req, "0", c0, c1, "refused",
                   detail_pids=tuple(pids))

    out = []
    # (a) two conflicting holds that overlap by 1 ms
    rep = check_no_conflicting_overlap([g(0, x_app, 0.0, 0.001, 0.010, 0.011),
                                        g(1, s_field, 0.008, 0.009, 0.020, 0.021)])
    out.append(("(a) flags conflicting holds that overlap", len(rep.violations) == 1))
    # (a) same requests, one released (sent) before the other was granted (returned)
    rep = check_no_conflicting_overlap([g(0, x_app, 0.0, 0.001, 0.010, 0.012),
                                        g(1, s_field, 0.005, 0.011, 0.020, 0.021)])
    out.append(("(a) accepts back-to-back conflicting holds", not rep.violations and rep.near_misses == 1))
    # (a) overlapping holds that the oracle allows, and the same connection twice
    rep = check_no_conflicting_overlap([g(0, s_field, 0.0, 0.001, 0.010, 0.011),
                                        g(1, s_field2, 0.0, 0.002, 0.010, 0.011),
                                        g(2, other, 0.0, 0.002, 0.010, 0.011),
                                        g(0, R((1,), "all", "share"), 0.0, 0.003, 0.010, 0.011)])
    out.append(("(a) accepts compatible overlapping holds",
                not rep.violations and rep.overlapping_pairs == 5 and rep.overlapping_scope_pairs == 2))
    # (b) a refusal with nobody in the way
    rep = check_refusals_justified([refused(0, s_field, 0.0, 0.001),
                                    g(1, other, 0.0, 0.001, 0.010, 0.011),
                                    g(2, x_app, 0.002, 0.003, 0.010, 0.011)])
    out.append(("(b) flags a refusal that nothing conflicting explains", len(rep.unexplained) == 1))
    # (b) a refusal while a conflicting holder was present, and its DETAIL naming that holder
    rep = check_refusals_justified([refused(0, s_field, 0.005, 0.006, pids=[101]),
                                    g(1, x_app, 0.0, 0.001, 0.010, 0.011)])
    out.append(("(b) accepts a refusal by a present conflicting holder",
                not rep.unexplained and rep.by_granted == 1 and not rep.detail_pids_wrong))
    # (b) a DETAIL naming a process that had nothing conflicting
    rep = check_refusals_justified([refused(0, s_field, 0.005, 0.006, pids=[101, 102]),
                                    g(1, x_app, 0.0, 0.001, 0.010, 0.011),
                                    g(2, other, 0.0, 0.001, 0.010, 0.011)])
    out.append(("(b) flags a DETAIL naming a process not in the way", len(rep.detail_pids_wrong) == 1))
    # (b) explained only by a conflicting request in flight (refused itself)
    rep = check_refusals_justified([refused(0, s_field, 0.005, 0.006),
                                    refused(1, x_app, 0.0055, 0.0058)])
    out.append(("(b) counts refusals explained only by an in-flight request",
                rep.by_in_flight_only == 2 and not rep.unexplained))
    # the oracle on the design doc's cases
    bad = [(a, b, want) for a, b, want in oracle.KNOWN_CASES
           if oracle.conflicts(a, b) != want or oracle.conflicts(b, a) != want]
    out.append((f"oracle agrees with the {len(oracle.KNOWN_CASES)} hand-checked cases of the design"
                + ("" if not bad else f": wrong on {bad[0][0]} vs {bad[0][1]}"), not bad))
    return out
