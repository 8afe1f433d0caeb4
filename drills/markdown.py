"""The drill report as Markdown: a page the exam office and the engineers read after a drill.

Sections: the verdict and what failed; a timeline per fault (injected, detected, notified whom,
acknowledged, cleared); the false alarms (rule, subject, severity, time, timetable moment), with
a count per rule and moment so a flood at one edge reads as one line; quiet spans; people's
actions; SMS counts per recipient and every SMS that was unaccounted for, lost or malformed.
"""

from __future__ import annotations

from collections import Counter

from drills.report import AlarmBrief, ExpectationScore, FaultScore, Report

MAX_ROWS = 60  # false alarms listed one by one; beyond this, the summary by rule and moment stands


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _after(r: Report, t: float | None, since: float) -> str:
    if t is None:
        return ""
    return f" (+{t - since:.0f} s)"


def _fault(r: Report, f: FaultScore) -> list[str]:
    mark = "✅" if f.ok else "❌"
    out = [f"### {mark} {f.id}: {_cell(f.detail)}", "",
           f"Site {f.site}, {r.hhmm(f.start)} to {r.hhmm(f.end)}.", "", "| time | what |", "|---|---|",
           f"| {r.hhmm(f.start)} | injected: {f.type} on {f.subject} |"]
    rows: list[tuple[float, str]] = [(f.end, "fault ends")]
    for e in f.expectations:
        rows += _expectation_rows(r, e)
    for t, what in sorted(rows, key=lambda x: x[0]):
        out.append(f"| {r.hhmm(t)} | {_cell(what)} |")
    for e in f.expectations:
        out += [f"- ❌ {_cell(p)}" for p in e.problems]
    if f.consequences:
        by_rule = Counter(c.rule for c in f.consequences)
        out.append("- also raised, explained by this fault: "
                   + ", ".join(f"{rule} ×{n}" for rule, n in sorted(by_rule.items())))
    return [*out, ""]


def _expectation_rows(r: Report, e: ExpectationScore) -> list[tuple[float, str]]:
    rows: list[tuple[float, str]] = []
    if e.reached_at is not None:
        rows.append((e.reached_at, f"detected: {e.rule} {e.severity} on {e.subject} (alarm {e.alarm_id})"
                                   f"{_after(r, e.reached_at, e.start)}, due by {r.hhmm(e.due)}"))
    else:
        rows.append((e.due, f"NOT detected: {e.rule} {e.severity} on {e.subject} was due"))
    first: dict[str, float] = {}
    for t in e.told:
        first_firing = e.fired_at is not None and e.reached_at is not None and e.reached_at <= e.fired_at + 1
        folded_in = t.incident and first_firing
        if t.kind != "all_clear" and t.at is not None and (e.reached_at is None or folded_in
                                                               or t.at >= e.reached_at - 1):
            first[t.name] = min(first.get(t.name, t.at), t.at)
    if first:
        who = ", ".join(f"{name} {r.hhmm(at)}" for name, at in sorted(first.items(), key=lambda x: x[1]))
        rows.append((min(first.values()), f"notified: {who}" + (f" (first level: {', '.join(e.should_hear)})"
                                                                if e.should_hear else "")))
    elif e.should_hear and e.reached_at is not None:
        held = f"; held back by a silence: {', '.join(e.muted)}" if e.muted else ""
        rows.append((e.reached_at, f"nobody notified (first level: {', '.join(e.should_hear)}{held})"))
    reminders = Counter(t.kind for t in e.told if t.kind in ("reminder", "escalation"))
    if reminders:
        rows.append((e.reached_at or e.start, "then " + ", ".join(f"{n} {k}" for k, n in reminders.items())))
    if e.acked_at is not None:
        comment = f": {e.ack_comment}" if e.ack_comment else ""
        rows.append((e.acked_at, f"acknowledged by {e.acked_by}{comment}"))
    if e.cleared_at is not None:
        clears = [t.name for t in e.told if t.kind == "all_clear" and t.received]
        told = f"; all-clear to {', '.join(dict.fromkeys(clears))}" if clears else ""
        by = "" if e.cleared_by in (None, "rules") else f" by {e.cleared_by}"
        rows.append((e.cleared_at, f"cleared{by}{told}"))
    return rows


def _false(r: Report) -> list[str]:
    out = ["## False alarms", ""]
    if not r.false_alarms:
        return [*out, "None: every alarm raised during the drill is explained by an injected fault.", ""]
    out += [f"**{len(r.false_alarms)} alarms matched no injected fault.** By rule, severity and timetable "
            "moment:", "", "| rule | severity | moment | alarms | sites | SMS |", "|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str, str], list[AlarmBrief]] = {}
    for a in r.false_alarms:
        where = a.moment.rsplit(" ", 1)[0] if a.moment[-1].isdigit() else a.moment  # drop the "+0:25" offset
        groups.setdefault((a.rule, a.severity, where), []).append(a)
    for (rule, sev, where), alarms in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        sites = sorted({a.site for a in alarms})
        sites_txt = ", ".join(sites[:8]) + (f" and {len(sites) - 8} more" if len(sites) > 8 else "")
        out.append(f"| {rule} | {sev} | {_cell(where)} | {len(alarms)} | {sites_txt} | {sum(a.sms for a in alarms)} |")
    out += ["", "| # | time | rule | subject | severity | moment | cleared | SMS | message |",
            "|---|---|---|---|---|---|---|---|---|"]
    for a in r.false_alarms[:MAX_ROWS]:
        out.append(f"| {a.alarm_id} | {r.hhmm(a.fired_at)} | {a.rule} | {a.subject} | {a.severity} | "
                   f"{_cell(a.moment)} | {r.hhmm(a.cleared_at)} | {a.sms} | {_cell(a.message[:80])} |")
    if len(r.false_alarms) > MAX_ROWS:
        out.append(f"| … | | {len(r.false_alarms) - MAX_ROWS} more (all of them are in the JSON report) | | | | | | |")
    return [*out, ""]


def _sms(r: Report) -> list[str]:
    s = r.sms
    if s is None:
        return []
    out = ["## SMS", "", f"Source: {s.source}. {s.received} SMS received during the drill"
           + (f", {s.for_false_alarms} of them about false alarms" if s.for_false_alarms else "")
           + (f" ({s.after_drill} more after it ended, not scored)" if s.after_drill else "") + ".", ""]
    kinds = sorted({k for counts in s.per_recipient.values() for k in counts})
    if kinds:
        out += ["| recipient | " + " | ".join(kinds) + " | total |", "|---|" + "---|" * (len(kinds) + 1)]
        for who, counts in sorted(s.per_recipient.items(), key=lambda x: -sum(x[1].values())):
            out.append(f"| {_cell(who)} | " + " | ".join(str(counts.get(k, 0)) for k in kinds)
                       + f" | {sum(counts.values())} |")
        out.append("")
    for title, rows in (("Unaccounted for", s.unaccounted), ("Sent, never received", s.lost),
                        ("Received, though the outbox says not sent", s.inconsistent),
                        ("Not one Chinese SMS", s.text_problems)):
        if rows:
            out += [f"**{title}** ({len(rows)}):", "", "| time | to | text | problem |", "|---|---|---|---|"]
            out += [f"| {r.hhmm(x.at)} | {_cell(x.recipient)} | {_cell(x.text)} | {_cell(x.problem)} |"
                    for x in rows[:MAX_ROWS]]
            out.append("")
    return out


def render(r: Report) -> str:
    """The whole report as Markdown."""
    out = [f"# Drill {r.scenario}: {r.title}", "",
           f"{r.hhmm(r.start)} to {r.hhmm(r.end)} on the drill clock ({r.speed:g}× real time); scored against "
           f"{r.scored_against}. {r.alarms_seen} alarms fired.", "", f"**{r.verdict}**", ""]
    if r.problems:
        out += ["Problems:", ""] + [f"- {_cell(p)}" for p in r.problems[:40]] + [""]
    out += ["## Faults", ""]
    for f in r.faults:
        out += _fault(r, f)
    if r.expected:
        out += ["## Expected alarms without a fault", ""]
        for e in r.expected:
            state = "✅" if not e.problems else "❌ " + "; ".join(e.problems)
            out.append(f"- {e.rule} {e.severity} on {e.subject} by {r.hhmm(e.due)}: {_cell(state)}")
        out.append("")
    out += _false(r)
    if r.quiet:
        out += ["## Quiet spans", ""]
        for q in r.quiet:
            mark = "✅ quiet" if not q.violations else "❌ " + ", ".join(
                f"{a.rule} on {a.subject} at {r.hhmm(a.fired_at)}" for a in q.violations[:10])
            why = f" ({q.why})" if q.why else ""
            out.append(f"- {r.hhmm(q.start)}-{r.hhmm(q.end)}, {q.scope}{_cell(why)}: {_cell(mark)}")
        out.append("")
    if r.actions:
        out += ["## People's actions", "", "| time | action | by | via | on | result |", "|---|---|---|---|---|---|"]
        for a in r.actions:
            mark = "✅" if a.ok else "❌"
            out.append(f"| {r.hhmm(a.at)} | {a.type} | {a.by} | {a.via} | {_cell(a.target)} | "
                       f"{mark} {_cell(a.result)} |")
        out.append("")
    out += _sms(r)
    if r.integrity or r.warnings:
        out += (["## The drill itself", ""] + [f"- ❌ {_cell(p)}" for p in r.integrity]
                + [f"- ⚠️ {_cell(w)}" for w in r.warnings] + [""])
    return "\n".join(out)
