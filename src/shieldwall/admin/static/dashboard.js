// The live dashboard: one status snapshot a second from /api/v1/stream (the shape is documented in
// src/shieldwall/control/status.py), drawn into the page; bans, incidents and operator actions through the
// JSON API (docs: /api/v1/openapi.json, contract: the admin API). No framework and nothing from outside.
//
// Anything that comes from traffic (paths, user agents, reasons) reaches the page only through
// textContent or createTextNode, never innerHTML, so it can never become markup.
"use strict";

(() => {
  const API = "/api/v1";
  const WINDOW = 300; // seconds shown by the charts, as many as the snapshot's history holds
  const GAP = 3; // seconds without a point that break a line
  const TOKEN_KEY = "shieldwall.admin.token";
  const STALE_AFTER = 5000; // ms without a snapshot before the header says so
  const BANS_EVERY = 5000;
  const INCIDENTS_EVERY = 10000;
  const SVG = "http://www.w3.org/2000/svg";
  const OUTCOMES = [
    ["allow", "allowed"],
    ["cache", "from cache"],
    ["limit", "rate-limited"],
    ["block", "blocked"],
    ["challenge", "challenged"],
    ["shed", "shed (503)"],
  ];
  const MODE_WORDS = { normal: "normal", elevated: "elevated", under_attack: "under attack" };
  const REPORT_TYPES = { html: "html", md: "md", json: "json", stix: "stix.json" };

  const $ = (id) => document.getElementById(id);
  let token = null;
  let lastSnapshotAt = 0;
  let lastIncident = null; // the incident and the mode the incidents list was loaded for
  let stream = null;
  // What the snapshot's history does not carry, kept from the snapshots seen since the page opened.
  const extra = []; // [wall, p50, queued, inflight]

  // ------------------------------------------------------------------ small helpers

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "class") node.className = value;
      else if (name === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function rate(x) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    if (x === 0) return "0";
    if (x >= 10000) return `${(x / 1000).toFixed(1)}k`;
    return x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString("en");
  }

  function seconds(s) {
    if (typeof s !== "number" || !isFinite(s)) return "–";
    if (s === 0) return "0";
    if (s >= 1) return `${s.toFixed(2)} s`;
    return `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms`;
  }

  // "95 %", "2.5 %", "0.05 %": a share above 0 never shows as 0.
  function share(x) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    const percent = x * 100;
    if (percent === 0) return "0 %";
    if (percent < 0.1) return `${percent.toFixed(2)} %`;
    return `${percent < 10 ? percent.toFixed(1) : Math.round(percent)} %`;
  }

  function clock(wall) {
    return new Date(wall * 1000).toLocaleTimeString([], { hour12: false });
  }

  function when(wall) {
    const date = new Date(wall * 1000);
    return `${date.toLocaleDateString()} ${date.toLocaleTimeString([], { hour12: false })}`;
  }

  function say(text, isError) {
    const box = $("message");
    box.textContent = text;
    box.dataset.kind = isError ? "error" : "ok";
    box.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { box.hidden = true; }, isError ? 12000 : 5000);
  }

  // ------------------------------------------------------------------ the API

  async function request(method, path, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      refused();
      throw new Error("the admin token was refused");
    }
    return response;
  }

  async function api(method, path, body) {
    const response = await request(method, path, body);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      const error = data && data.error; // the API's errors: {"error": "what is wrong; what to do"}
      throw new Error(typeof error === "string" ? error : `${response.status} ${response.statusText}`);
    }
    return data;
  }

  // An operator's action: what it says when done (text, or a function of the answer), and what to
  // refresh after. The API's notes (e.g. "its prefix is banned too") are shown with it.
  async function act(what, method, path, body, done) {
    try {
      const data = await api(method, path, body);
      const words = typeof what === "function" ? what(data) : what;
      say(data && data.note ? `${words}; ${data.note}` : words);
      if (done) await done();
    } catch (error) {
      say(error.message, true);
    }
  }

  // ------------------------------------------------------------------ charts (inline SVG)

  // Runs of points no more than GAP seconds apart, inside the window ending at t1.
  function runs(points, t1) {
    const out = [];
    let run = [];
    let previous = -Infinity;
    for (const point of points) {
      if (point[0] < t1 - WINDOW || !Number.isFinite(point[1])) continue; // null: not measured
      if (point[0] - previous > GAP && run.length) { out.push(run); run = []; }
      run.push(point);
      previous = point[0];
    }
    if (run.length) out.push(run);
    return out;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  // The SVG's size in CSS pixels, made its viewBox so that text is never stretched.
  function fit(node) {
    const box = node.getBoundingClientRect();
    const width = Math.round(box.width) || 600;
    const height = Math.round(box.height) || 100;
    node.setAttribute("viewBox", `0 0 ${width} ${height}`);
    return [width, height];
  }

  // Draws series into an SVG: stacked areas (each on top of the one before,
  // over the same times) or lines. series: [{cls, points: [[wall, value], ...]}]. A data-points
  // attribute says how many points the first series has in the window, for tests and for whoever inspects.
  function chart(node, t1, series, { stacked = false, format = rate, empty = "" } = {}) {
    const [width, height] = fit(node);
    const [left, right, top, bottom] = [46, 4, 6, 4];
    const x = (t) => left + ((t - (t1 - WINDOW)) / WINDOW) * (width - left - right);
    let layers = series.map((s) => s.points.map(([t, v]) => [t, v, 0]));
    if (stacked) {
      for (let i = 1; i < layers.length; i++) {
        layers[i] = layers[i].map(([t, v], j) => {
          const below = layers[i - 1][j] ? layers[i - 1][j][1] : 0;
          return [t, below + v, below];
        });
      }
    }
    const max = niceMax(Math.max(0, ...layers.flat().map((p) => p[1]).filter(Number.isFinite)));
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    const parts = [];
    for (const v of [0, max / 2, max]) {
      parts.push(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }));
      parts.push(svg("text", { class: "axis", x: left - 4, y: y(v) + (v === max ? 9 : v === 0 ? -1 : 3), "text-anchor": "end" },
        format(v)));
    }
    layers.forEach((layer, i) => {
      for (const run of runs(layer, t1)) {
        const tops = run.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
        if (stacked) {
          const bottoms = run.map(([t, , b]) => `${x(t).toFixed(1)},${y(b).toFixed(1)}`).reverse();
          const edge = run.length === 1 ? [`${(x(run[0][0]) + 2).toFixed(1)},${y(run[0][1]).toFixed(1)}`] : [];
          parts.push(svg("path", { class: `area ${series[i].cls}`, d: `M${[...tops, ...edge, ...bottoms].join("L")}Z` }));
        } else {
          const d = run.length === 1 ? `M${tops[0]}h2` : `M${tops.join("L")}`;
          parts.push(svg("path", { class: `line ${series[i].cls}`, d }));
        }
      }
    });
    if (empty && !layers.some((layer) => layer.length)) {
      parts.push(svg("text", { class: "axis", x: (left + width) / 2, y: height / 2, "text-anchor": "middle" }, empty));
    }
    node.replaceChildren(...parts);
    node.dataset.points = String(layers.length ? runs(layers[0], t1).flat().length : 0);
    node.dataset.max = String(max);
  }

  // The mode of each second as a coloured band, and the time axis under all the charts.
  function modeBand(node, t1, history) {
    const [width] = fit(node);
    const [left, right] = [46, 4];
    const x = (t) => left + ((t - (t1 - WINDOW)) / WINDOW) * (width - left - right);
    const parts = [];
    const seen = new Set();
    let start = null;
    history.forEach((point, i) => {
      const [t, , , , mode] = point;
      if (t < t1 - WINDOW) return;
      seen.add(mode);
      if (start === null) start = t;
      const next = history[i + 1];
      if (!next || next[4] !== mode || next[0] - t > GAP) {
        const end = next && next[0] - t <= GAP ? next[0] : t + 1;
        parts.push(svg("rect", { class: `band-${mode}`, x: x(start), y: 0, height: 14, width: Math.max(1, x(end) - x(start)) }));
        start = null;
      }
    });
    for (let minutes = 5; minutes >= 0; minutes--) {
      const anchor = minutes === 5 ? "start" : minutes === 0 ? "end" : "middle";
      parts.push(svg("text", { class: "axis", x: x(t1 - minutes * 60), y: 27, "text-anchor": anchor },
        minutes ? `−${minutes} min` : "now"));
    }
    node.replaceChildren(...parts);
    node.dataset.modes = [...seen].join(" ");
  }

  // ------------------------------------------------------------------ tables

  // Brings tbody's rows in line with items, keeping the rows (and their buttons) of keys still there,
  // so a row under the operator's finger is not replaced while they click it. cells(item) gives, for
  // each cell, text or {main, sub} (a bold line and a small one; both updated in place), or a function
  // building the cell's nodes once (buttons, links); [cell, "class"] gives the cell a class.
  function syncRows(tbody, items, key, cells, emptyText, columns) {
    const old = new Map([...tbody.children].map((row) => [row.dataset.key, row]));
    const rows = items.map((item) => {
      const id = String(key(item));
      const content = cells(item).map((cell) => (Array.isArray(cell) ? cell : [cell, ""]));
      let row = old.get(id);
      if (!row) {
        row = el("tr", { "data-key": id });
        for (const [value, cls] of content) {
          const td = el("td", cls ? { class: cls } : {});
          if (typeof value === "function") td.append(...[value()].flat());
          else if (typeof value === "object") td.append(el("strong", {}, value.main), el("span", { class: "sub" }, value.sub));
          row.append(td);
        }
      }
      content.forEach(([value], i) => {
        const td = row.children[i];
        if (typeof value === "string") setText(td, value);
        else if (typeof value === "object") { setText(td.children[0], value.main); setText(td.children[1], value.sub); }
      });
      return row;
    });
    if (!rows.length) {
      rows.push(old.get("") || el("tr", { "data-key": "" }, el("td", { class: "empty", colspan: String(columns) }, emptyText)));
    }
    const same = rows.length === tbody.children.length && rows.every((row, i) => tbody.children[i] === row);
    if (!same) tbody.replaceChildren(...rows);
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function button(label, onClick) {
    return el("button", { type: "button", on: { click: onClick } }, label);
  }

  // ------------------------------------------------------------------ the snapshot

  function render(snapshot) {
    const now = snapshot.now || {};
    const origin = now.origin || {};
    const stats = snapshot.stats || {};
    const wall = snapshot.wall || Date.now() / 1000;
    const mode = snapshot.mode || "normal";
    const badge = $("mode");
    badge.textContent = MODE_WORDS[mode] || mode;
    badge.dataset.mode = mode;
    $("pinned").hidden = !snapshot.pinned;
    const incident = $("incident");
    incident.hidden = !snapshot.incident;
    incident.textContent = snapshot.incident ? `incident ${snapshot.incident}` : "";
    // With [cluster]: the mode above is the cluster's; the figures below are this node's own.
    const cluster = snapshot.cluster;
    const clusterTag = $("cluster");
    clusterTag.hidden = !cluster;
    if (cluster) {
      clusterTag.textContent = cluster.degraded
        ? `node ${cluster.node}: Redis lost, protecting alone`
        : `node ${cluster.node}: ${cluster.role} of ${cluster.nodes.length}`;
    }
    document.title = `${MODE_WORDS[mode] || mode} · shieldwall`;

    $("fig-rps").textContent = rate(now.rps);
    $("fig-legit").textContent = rate(now.legit_rps);
    $("fig-mitigated").textContent = rate(now.mitigated_rps);
    $("fig-latency").textContent = `${seconds(origin.p50)} / ${seconds(origin.p95)}`;
    $("fig-errors").textContent = share(origin.error_share);
    $("fig-queue").textContent = "admission.queued" in stats ? String(stats["admission.queued"]) : "off";
    $("fig-clients").textContent = typeof now.distinct_clients === "number" ? now.distinct_clients.toLocaleString("en") : "–";
    $("fig-conns").textContent = rate(now.new_connections);

    if (snapshot.wall && (!extra.length || extra[extra.length - 1][0] < wall)) {
      extra.push([wall, origin.p50, stats["admission.queued"], stats["admission.in_flight"]]);
      while (extra.length && extra[0][0] < wall - WINDOW) extra.shift();
    }
    const history = snapshot.history || [];
    chart($("chart-rps"), wall, [
      { cls: "s-legit", points: history.map((p) => [p[0], p[1]]) },
      { cls: "s-mitigated", points: history.map((p) => [p[0], p[2]]) },
    ], { stacked: true });
    chart($("chart-latency"), wall, [
      { cls: "s-p95", points: history.map((p) => [p[0], p[3]]) },
      { cls: "s-p50", points: extra.map((p) => [p[0], p[1]]) },
    ], { format: seconds });
    chart($("chart-queue"), wall, [
      { cls: "s-queued", points: extra.filter((p) => p[2] !== undefined).map((p) => [p[0], p[2]]) },
      { cls: "s-inflight", points: extra.filter((p) => p[3] !== undefined).map((p) => [p[0], p[3]]) },
    ], { format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)), empty: "admission control is off" });
    modeBand($("mode-band"), wall, history);
    renderDecisions(now.by_outcome || {});
    renderWhy(snapshot);
    renderSignatures(snapshot.signatures || []);
    for (const name of ["prefix", "client_ip", "path", "user_agent"]) renderTop(name, (snapshot.top || {})[name] || []);

    // An incident opens, climbs or closes: its row (peak, end) changes now, not at the next poll.
    const incidentState = `${snapshot.incident || ""} ${mode}`;
    if (incidentState !== lastIncident) {
      lastIncident = incidentState;
      loadIncidents();
    }
    $("live").textContent = `live · ${clock(wall)}`;
  }

  function renderDecisions(byOutcome) {
    const box = $("decisions");
    if (!box.children.length) {
      box.append(...OUTCOMES.map(([name, words]) => el("span", { class: `decision ${name}`, "data-outcome": name }, "", ` ${words}`)));
    }
    for (const span of box.children) {
      const value = byOutcome[span.dataset.outcome] || 0;
      span.firstChild.textContent = rate(value);
      span.classList.toggle("zero", value === 0);
    }
  }

  function renderWhy(snapshot) {
    const detector = snapshot.detector || {};
    const words = [];
    if (snapshot.pinned) words.push(`pinned by an operator (the detector would say ${MODE_WORDS[detector.auto_mode] || detector.auto_mode})`);
    if (detector.reasons && detector.reasons.length) words.push(`why: ${detector.reasons.join("; ")}`);
    if (detector.baseline_ready === false) words.push(`learning normal traffic (${detector.learned_seconds || 0} s so far)`);
    $("mode-why").textContent = words.length ? words.join(" · ") : "The detector sees nothing unusual.";
    $("unpin").disabled = !snapshot.pinned;
  }

  function renderSignatures(signatures) {
    // The key holds the pinned flag: a pinned signature's row is rebuilt with an Unpin button.
    syncRows($("signatures"), signatures, (s) => `${s.id} ${s.pinned ? "pinned" : ""}`, (s) => {
      const path = `/signatures/${encodeURIComponent(s.id)}`;
      const toggle = () => (s.pinned
        ? button("Unpin", () => act(`signature ${s.id} unpinned`, "POST", `${path}/unpin`))
        : button("Pin", () => act(`signature ${s.id} pinned: it stays until unpinned`, "POST", `${path}/pin`)));
      return [
        { main: s.description, sub: `${s.id} · ${s.action} · ${s.pinned ? "pinned" : `until ${clock(s.expires)} unless seen again`}` },
        [share(s.coverage), "num"],
        [share(s.collateral), "num"],
        [() => [toggle(), button("Reject", () => act(`signature ${s.id} rejected`, "POST", `${path}/reject`))], "actions"],
      ];
    }, "no attack signatures", 4);
  }

  function renderTop(name, entries) {
    const banable = name === "prefix" || name === "client_ip";
    syncRows($(`top-${name}`), entries, (e) => e[0], ([key, count]) => {
      const cells = [String(key), [Number(count).toLocaleString("en"), "num"]];
      if (banable) cells.push([() => button("Ban…", () => fillBan(String(key))), "actions"]);
      return cells;
    }, "nothing yet", banable ? 3 : 2);
  }

  function fillBan(target) {
    $("ban-target").value = target;
    $("ban-reason").value = "from the dashboard's top sources";
    $("ban-target").focus();
    $("ban-form").scrollIntoView({ behavior: "smooth", block: "center" });
  }

  // ------------------------------------------------------------------ bans and incidents

  async function loadBans() {
    let bans;
    try { bans = await api("GET", "/bans"); } catch { return; }
    syncRows($("bans"), bans, (b) => `${b.target} ${b.since}`, (b) => [
      [{ main: b.target, sub: `${b.source}${b.level ? `, level ${b.level}` : ""}` }, "target"],
      b.until === null || b.until === undefined ? "permanent" : when(b.until),
      b.reason || "",
      [() => button("Unban", () => act((r) => `${b.target} unbanned (${r.lifted} ban${r.lifted === 1 ? "" : "s"} lifted)`,
        "DELETE", `/bans/${encodeURIComponent(b.target)}`, undefined, loadBans)), "actions"],
    ], "no bans", 4);
  }

  async function loadIncidents() {
    let incidents;
    try { incidents = await api("GET", "/incidents"); } catch { return; }
    syncRows($("incidents"), incidents, (i) => i.id, (i) => [
      { main: i.id, sub: `${when(i.opened)} → ${i.closed ? clock(i.closed) : "open"}` },
      `${MODE_WORDS[i.peak_mode] || i.peak_mode}, ${rate(i.peak_rps)}/s`,
      [() => Object.keys(REPORT_TYPES).map((format) =>
        el("a", { href: `${API}/incidents/${encodeURIComponent(i.id)}/report?format=${format}`, "data-format": format,
          on: { click: (event) => { event.preventDefault(); openReport(i.id, format); } } }, format.toUpperCase(), " ")), "actions"],
    ], "no incidents yet", 3);
  }

  // Reports need the token, which a plain link cannot carry: fetch with it, then show the HTML in a new
  // tab (opened at the click, so no popup blocker objects) or save the other formats as files.
  async function openReport(id, format) {
    const tab = format === "html" ? window.open("", "_blank") : null;
    if (tab) tab.opener = null;
    try {
      const response = await request("GET", `/incidents/${encodeURIComponent(id)}/report?format=${format}`);
      if (!response.ok) throw new Error(`the ${format} report of ${id}: ${response.status} ${response.statusText}`);
      const blob = await response.blob();
      const url = URL.createObjectURL(format === "html" ? new Blob([blob], { type: "text/html" }) : blob);
      if (tab) tab.location.href = url;
      else el("a", { href: url, download: `${id}.${REPORT_TYPES[format]}` }).click();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      if (tab) tab.close();
      say(error.message, true);
    }
  }

  // ------------------------------------------------------------------ forms

  function wireForms() {
    $("ban-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const target = $("ban-target").value.trim();
      const duration = $("ban-duration").value;
      const reason = $("ban-reason").value.trim() || "banned from the dashboard";
      act(`${target} banned (${duration})`, "POST", "/bans", { target, duration, reason }, async () => {
        $("ban-target").value = "";
        $("ban-reason").value = "";
        await loadBans();
      });
    });
    $("pin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const mode = $("pin-mode").value;
      const duration = $("pin-duration").value;
      act(`${MODE_WORDS[mode]} pinned (${duration})`, "POST", "/mode/pin", { mode, duration, reason: "pinned from the dashboard" });
    });
    $("unpin").addEventListener("click", () => act("unpinned: the detector decides again", "POST", "/mode/unpin"));
    $("lookup-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const out = $("lookup-result");
      try {
        const r = await api("GET", `/lookup/${encodeURIComponent($("lookup-ref").value.trim())}`);
        out.textContent = `${clock(r.wall)} · ${r.client} · ${r.method} ${r.target} → ${r.status} (${r.reason})`;
      } catch (error) {
        out.textContent = error.message;
      }
    });
  }

  // ------------------------------------------------------------------ live updates

  function setLive(state, text) {
    const live = $("live");
    live.dataset.state = state;
    if (text) live.textContent = text;
  }

  function refused() {
    token = null;
    if (stream) stream.close();
    stream = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("main").hidden = true;
    $("need-token").hidden = false;
    $("need-token-title").textContent = "The admin token was refused";
    setLive("refused", "token refused");
  }

  function connect() {
    stream = new EventSource(`${API}/stream?token=${encodeURIComponent(token)}`);
    stream.addEventListener("status", (event) => {
      lastSnapshotAt = Date.now();
      setLive("live");
      render(JSON.parse(event.data));
    });
    stream.addEventListener("error", () => {
      if (stream && stream.readyState === EventSource.CLOSED) {
        // The server answered something other than a stream (a 401, or it restarted): ask why, then retry.
        stream = null;
        setLive("stale", "reconnecting…");
        setTimeout(() => api("GET", "/status").then(render).catch(() => {}).finally(() => { if (token && !stream) connect(); }), 2000);
      }
    });
  }

  function readToken() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match && match[1]) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      // Off the address bar (and out of screenshots); the tab keeps it in sessionStorage.
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function start() {
    token = readToken();
    if (!token) {
      $("need-token").hidden = false;
      setLive("refused", "no token");
      return;
    }
    $("main").hidden = false;
    wireForms();
    api("GET", "/status").then(render).catch((error) => say(error.message, true));
    connect();
    loadBans();
    loadIncidents();
    setInterval(loadBans, BANS_EVERY);
    setInterval(loadIncidents, INCIDENTS_EVERY);
    setInterval(() => {
      const age = Date.now() - lastSnapshotAt;
      if (token && lastSnapshotAt && age > STALE_AFTER) setLive("stale", `no update for ${Math.round(age / 1000)} s`);
    }, 1000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
