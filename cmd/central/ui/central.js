// The central service's status page: /api/status every 2 s; rates from the last two documents.
"use strict";
(() => {
  const { el, kv, num, dur, ago, getJSON, fill, table, td, poll } = fg;
  let prev = null; // {at, doc}

  // rate is the change of f(doc) a second since the previous document, "–" before there is one.
  function rate(doc, at, f) {
    if (!prev || at <= prev.at) return "–";
    return num(Math.max(0, (f(doc) - f(prev.doc)) / ((at - prev.at) / 1000)), 1);
  }

  async function update() {
    const d = await getJSON("/api/status");
    const at = Date.now();
    fill("version", d.version + " · up " + dur(d.uptime_seconds));
    const ps = d.partitions || [];
    fill("partitions-count", "(" + ps.length + ")");
    fill("partitions", ps.length ? table(["Partition", "Lag", "Committed offset"], ps.map((p) => ({
      cls: "partition-row" + (p.lag > 10000 ? " bad" : ""), data: { partition: String(p.partition) },
      cells: [td(p.partition), td(num(p.lag), "num"), td(p.committed_offset < 0 ? "none yet" : num(p.committed_offset), "num")],
    }))) : el("p", "empty", "No partition assigned."));
    const w = d.windows || {};
    fill("windows", kv([
      ["Watermark delay", dur(w.watermark_delay_seconds), w.watermark_delay_seconds > 300 ? "warn" : ""],
      ["Open", num(w.open) + " windows, " + num(w.devices) + " devices"],
      ["Fired", num(w.fired) + " (" + rate(d, at, (x) => x.windows.fired) + "/s)"],
      ["Late readings", num(d.records.late)],
      ["Recomputed", num(w.recomputed)],
      ["Aggregates written", num(w.aggregates_written)],
    ]));
    const db = d.database;
    fill("database", db ? kv([
      ["Connected", db.connected ? "yes" : "NO", db.connected ? "ok" : "bad"],
      ["Raw rows/s", rate(d, at, (x) => x.database.raw_rows)],
      ["Raw rows", num(db.raw_rows)],
      ["Aggregate rows", num(db.aggregate_rows)],
      ["Statements", num(db.statements) + (db.statements ? ", " + num((db.write_seconds / db.statements) * 1000, 1) + " ms each" : "")],
      ["Errors", num(db.errors), db.errors ? "bad" : ""],
      ["Rows rejected", num(db.rows_rejected), db.rows_rejected ? "bad" : ""],
      ["Last error", db.last_error ? db.last_error + " (" + ago(db.last_error_time) + ")" : "none", db.last_error ? "err" : ""],
    ]) : el("p", "empty", "Demo mode: no database."));
    fill("records", kv([
      ["Consumed/s", rate(d, at, (x) => x.records.consumed)],
      ["Consumed", num(d.records.consumed)],
      ["Written", num(d.records.written)],
      ["Duplicates", num(d.records.duplicates)],
    ]));
    const reasons = Object.entries(d.dead_letters || {}).sort();
    const total = reasons.reduce((s, [, n]) => s + n, 0);
    fill("deadletters", table(["Reason", "Since start"], reasons.map(([r, n]) => ({
      cls: "reason-row" + (n ? " bad" : ""), data: { reason: r }, cells: [td(r), td(num(n), "num")],
    }))), el("p", "small", total ? "The rows are in the dead_letters table." : "None since start."));
    prev = { at, doc: d };
  }

  poll(update, 2000);
})();
