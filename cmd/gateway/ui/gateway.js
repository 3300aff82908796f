// The gateway's status page: /api/status every 2 s, /api/series every 5 s, /api/deadletters every 5 s.
"use strict";
(() => {
  const { el, kv, spark, chart, num, bytes, dur, ago, getJSON, fill, table, td, poll } = fg;
  let series = null; // the last /api/series
  let lastSeries = 0, lastLetters = 0;

  const goodConditions = new Set(["connected"]);

  function inputs(st) {
    const rows = (st.sources || []).map((s) => {
      const ok = goodConditions.has(s.condition);
      return {
        cls: ok ? "input-row" : "input-row bad",
        data: { input: s.name, condition: s.condition },
        cells: [td(s.name), td(s.type), td(s.condition, "state " + (ok ? "ok" : "bad")), td(s.since ? ago(s.since) : "–", "small"),
          td(num(s.readings_per_second, 1), "num"), td(num(s.dead_letters), "num"), td(s.last_error || (s.stats && s.stats.last_error) || "", "err small")],
      };
    });
    fill("inputs", rows.length ? table(["Input", "Type", "State", "Since", "Readings/s", "Dead letters", "Last error"], rows) : el("p", "empty", "No inputs configured."));
  }

  function sparkOf(device, metric) {
    if (!series) return null;
    const s = series.byKey.get(device + "\u0000" + metric);
    return s ? spark(s.values) : null;
  }

  function devices(st) {
    const ds = st.devices || [];
    fill("devices-count", "(" + ds.length + ")");
    const rows = ds.map((d) => {
      const q = d.quality || "";
      const ms = el("div", "metrics");
      for (const m of d.metrics || []) {
        const value = typeof m.value === "number" ? num(m.value) : m.value === null ? "–" : String(m.value);
        const node = el("span", "metric q-" + m.quality, null, el("span", "name", m.metric), el("span", "value", value));
        const sp = sparkOf(d.device, m.metric);
        if (sp) node.append(sp);
        ms.append(node);
      }
      return {
        cls: "device-row", data: { device: d.device },
        cells: [td(d.device), td(d.source, "small"), td(ago(d.last_reading), "small"),
          td(q, q === "good" ? "ok" : q === "bad" ? "bad" : "warn"), el("td", "", null, ms)],
      };
    });
    fill("devices", rows.length ? table(["Device", "Input", "Last reading", "Quality", "Last values"], rows) : el("p", "empty", "No readings yet."));
  }

  function buffer(st) {
    const b = st.buffer || {}, r = b.rates || {};
    fill("buffer", kv([
      ["Entries", num(b.entries)],
      ["Bytes", bytes(b.bytes) + " of " + bytes(b.max_bytes)],
      ["Oldest", dur(b.oldest_age_seconds), b.oldest_age_seconds > 60 ? "warn" : ""],
      ["Disk writes", bytes(r.disk_written_bytes_per_day / 24) + "/h"],
      ["Commits/s", num(r.commits_per_second, 1)],
      ["Healthy", b.healthy ? "yes" : "NO: " + (b.last_error || ""), b.healthy ? "ok" : "bad"],
    ]));
    if (!series) return;
    const pts = series.buffer || [];
    const col = (k) => pts.map((p) => p[k]);
    fill("buffer-charts",
      chart("Entries, last hour", col("entries"), num),
      chart("Oldest age", col("oldest_age_seconds"), dur),
      chart("Disk bytes/h", col("disk_written_bytes_per_hour"), bytes),
      chart("Commits/s", col("commits_per_second"), (v) => num(v, 1)));
  }

  function kafka(st) {
    const k = st.kafka || {}, e = k.produce_errors || {};
    fill("kafka", kv([
      ["Connected", k.connected ? "yes" : "NO", k.connected ? "ok" : "bad"],
      ["Forwarded/s", num(k.forwarded_per_second, 1)],
      ["Forwarded", num(k.forwarded)],
      ["Errors", num(e.retriable) + " retriable, " + num(e.fatal) + " fatal", e.fatal ? "bad" : ""],
      ["Last success", ago(k.last_success)],
      ["Last error", k.last_error ? k.last_error + " (" + ago(k.last_error_time) + ")" : "none", k.last_error ? "err" : ""],
    ]));
  }

  function config(st) {
    const c = st.config || {}, lr = c.last_reload;
    const pairs = [
      ["Hash", (c.hash || "").slice(0, 12)],
      ["Applied", ago(c.applied_at)],
      ["Files", (c.files || []).join(", ")],
      ["Last reload", lr ? lr.result + " (" + lr.trigger + ", " + ago(lr.time) + ")" + (lr.error ? ": " + lr.error : "") : "none",
        lr && (lr.result === "refused" || lr.result === "failed") ? "bad" : ""],
    ];
    if (c.fallback) pairs.push(["Fallback", c.fallback, "bad"]);
    fill("config", kv(pairs));
  }

  // deadLetters renders /api/deadletters: newest first; the payload is shown as text only.
  function deadLetters(st, doc) {
    const stored = (st.buffer || {}).dead_letters;
    fill("deadletters-count", "(" + num(stored) + " stored)");
    if (doc === null) {
      fill("deadletters", el("p", "empty", "The dead letters could not be read."));
      return;
    }
    const items = doc.dead_letters || [];
    if (!items.length) {
      fill("deadletters", el("p", "empty", "None."));
      return;
    }
    const ul = el("ul", "letters");
    for (const d of items.slice(0, 20)) {
      const li = el("li", "deadletter");
      if (d.id !== undefined) li.dataset.id = String(d.id);
      li.append(
        el("div", "", null, el("strong", "", ago(d.time)), " ", el("span", "", d.input || ""), " ", el("span", "small", d.origin || "")),
        el("div", "reason err", d.reason || ""),
        el("div", "small", (d.class ? d.class + ", " : "") + bytes(d.payload_bytes) + (d.truncated ? ", shown truncated" : "")),
        el("pre", "payload", d.payload === undefined || d.payload === null ? "" : String(d.payload)));
      ul.append(li);
    }
    fill("deadletters", ul);
  }

  let letters = null;
  async function update() {
    const now = Date.now();
    const st = await getJSON("/api/status");
    if (now - lastSeries >= 5000) {
      const s = await getJSON("/api/series");
      if (s) {
        s.byKey = new Map((s.series || []).map((x) => [x.device + "\u0000" + x.metric, x]));
        series = s;
      }
      lastSeries = now;
    }
    if (now - lastLetters >= 5000) {
      letters = await getJSON("/api/deadletters?limit=20").catch(() => letters);
      lastLetters = now;
    }
    document.title = "fieldgate " + st.gateway_id;
    fill("title", "fieldgate " + st.gateway_id);
    const ready = document.getElementById("ready");
    ready.className = "meta " + (st.ready ? "ok" : "bad");
    ready.textContent = st.ready ? "READY" : "NOT READY: " + (st.not_ready || []).join("; ");
    fill("version", st.version + " · up " + dur(st.uptime_seconds));
    inputs(st);
    devices(st);
    buffer(st);
    kafka(st);
    config(st);
    deadLetters(st, letters);
  }

  poll(update, 2000);
})();
