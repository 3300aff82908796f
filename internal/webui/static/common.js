// Shared helpers of the fieldgate status pages. Every value from the APIs goes into the document as text
// (textContent, SVG attributes): nothing is ever parsed as HTML. No inline styles: classes only.
"use strict";
const fg = (() => {
  const SVG = "http://www.w3.org/2000/svg";

  // el creates an element with a class and text; children may follow (nodes or strings).
  function el(tag, cls, text, ...children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const c of children) e.append(c);
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // lines returns polylines through values (null breaks a line) scaled into w×h, y up.
  function lines(values, w, h, lo, hi) {
    const out = [];
    const span = hi - lo || 1;
    const dx = values.length > 1 ? w / (values.length - 1) : 0;
    let pts = [];
    const flush = () => {
      if (pts.length === 1) pts.push(pts[0].replace(/^[^,]+/, (x) => String(Number(x) + 1)));
      if (pts.length) out.push(svg("polyline", { points: pts.join(" ") }));
      pts = [];
    };
    values.forEach((v, i) => {
      if (v === null || v === undefined || !isFinite(v)) return flush();
      pts.push((i * dx).toFixed(1) + "," + (h - ((v - lo) / span) * h).toFixed(1));
    });
    flush();
    return out;
  }

  function range(values) {
    const xs = values.filter((v) => v !== null && v !== undefined && isFinite(v));
    if (!xs.length) return null;
    let lo = Math.min(...xs), hi = Math.max(...xs);
    if (lo === hi) { lo -= 1; hi += 1; }
    return [lo, hi];
  }

  // spark is a small line of values (oldest first), scaled to their range.
  function spark(values) {
    const s = svg("svg", { class: "spark", viewBox: "0 0 100 24", preserveAspectRatio: "none", role: "img" });
    const r = range(values);
    if (r) for (const l of lines(values, 100, 22, r[0], r[1])) { l.setAttribute("transform", "translate(0,1)"); s.append(l); }
    return s;
  }

  // chart is a figure: a caption, and the line of values with the greatest and smallest value labelled.
  function chart(caption, values, fmt) {
    const s = svg("svg", { class: "chart", viewBox: "0 0 300 80", preserveAspectRatio: "none", role: "img" });
    const r = range(values);
    if (r) {
      const lo = Math.min(0, r[0]);
      for (const l of lines(values, 300, 66, lo, r[1])) { l.setAttribute("transform", "translate(0,12)"); s.append(l); }
      const top = svg("text", { x: 2, y: 10 }); top.textContent = "max " + fmt(Math.max(...values.filter((v) => v !== null)));
      s.append(top);
    }
    const last = values.length ? values[values.length - 1] : null;
    return el("figure", "", null, el("figcaption", "", caption + (last === null ? "" : ": " + fmt(last))), s);
  }

  function num(v, digits) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v !== "number") return String(v);
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
    const a = Math.abs(v);
    return v.toLocaleString("en-US", { maximumFractionDigits: digits !== undefined ? digits : a >= 100 ? 1 : a >= 1 ? 2 : 4 });
  }

  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : String(Math.round(n))) + " " + u[i];
  }

  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  // ago is "HH:MM:SS (N ago)" of an RFC 3339 time, "–" for none.
  function ago(t) {
    if (!t) return "–";
    const d = new Date(t);
    if (isNaN(d)) return "–";
    const secs = (Date.now() - d.getTime()) / 1000;
    const hms = d.toLocaleTimeString("en-GB", { hour12: false });
    return hms + " (" + (secs < 1 ? "now" : dur(secs) + " ago") + ")";
  }

  // getJSON fetches url; it resolves to null on 404 (an API this build does not have), and throws otherwise.
  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  function fill(id, ...nodes) {
    const e = document.getElementById(id);
    if (e) e.replaceChildren(...nodes);
  }

  // table builds a table; rows are {cells: [node or text], cls, data: {name: value}}.
  function table(heads, rows) {
    const t = el("table");
    t.append(el("thead", "", null, el("tr", "", null, ...heads.map((h) => el("th", "", h)))));
    const b = el("tbody");
    for (const r of rows) {
      const tr = el("tr", r.cls || "");
      for (const [k, v] of Object.entries(r.data || {})) tr.dataset[k] = v;
      r.cells.forEach((c, i) => {
        const cell = c instanceof Node ? c : el("td", "", c);
        cell.dataset.label = heads[i]; // the heading beside the value on a phone (common.css)
        tr.append(cell);
      });
      b.append(tr);
    }
    t.append(b);
    return el("div", "scroll", null, t);
  }

  function td(text, cls) { return el("td", cls || "", text); }

  // kv builds a definition list of [key, value (text or node), value's class] triples.
  function kv(pairs) {
    const dl = el("dl", "kv");
    for (const [k, v, cls] of pairs) dl.append(el("dt", "", k), v instanceof Node ? el("dd", cls || "", null, v) : el("dd", cls || "", v));
    return dl;
  }

  // poll calls update every ms milliseconds (after the previous call ends) and shows in #conn whether the
  // last one succeeded.
  function poll(update, ms) {
    const conn = document.getElementById("conn");
    const tick = async () => {
      try {
        await update();
        conn.className = "";
        conn.textContent = "updated " + new Date().toLocaleTimeString("en-GB", { hour12: false });
      } catch (e) {
        conn.className = "lost";
        conn.textContent = "no answer: " + e.message;
      }
      setTimeout(tick, ms);
    };
    tick();
  }

  return { el, svg, spark, chart, num, bytes, dur, ago, getJSON, fill, table, td, kv, poll };
})();
