// The dashboard's page: the list of Rollouts (#/) and one Rollout (#/r/NAMESPACE/NAME), both kept
// live by server-sent events (/api/stream); actions are POSTs with the CSRF token from /api/config.
// Plain DOM building (text is never parsed as HTML) and SVG charts drawn here: no library, no CDN.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ACTION_TEXT = {
  "promote": ["Promote", "pass the current pause, inconclusive analysis or blue/green gate"],
  "promote-full": ["Promote full", "take the new revision to 100% without further steps or analysis"],
  "abort": ["Abort", "stop the update: traffic goes back to the stable revision"],
  "retry": ["Retry", "start the aborted update again from the first step"],
  "pause": ["Pause", "hold the Rollout where it is"],
  "resume": ["Resume", "lift a pause made with Pause"],
  "restart": ["Restart", "replace the stable revision's pods one at a time"],
  "undo": ["Undo", "roll back to the previous revision (it goes through the strategy like any update)"],
};
let config = { csrfToken: "", readOnly: true, scope: "" };
let stream = null;
let filters = { namespace: "", phase: "", name: "" };
let lastResult = null;  // {key, ok, message}: the last action's answer, kept across redraws
let pending = null;     // the action waiting for confirmation

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function banner(text, bad) {
  const b = document.getElementById("banner");
  b.hidden = !text;
  b.textContent = text || "";
  b.className = bad ? "bad" : "";
}

function showConnection(connection, problem) {
  if (connection && connection.problem) {
    banner(`Kubernetes API server unreachable or watch cut: ${connection.problem}. Reconnecting by itself…`, true);
  } else if (connection && !connection.listed) {
    banner("Connecting to the Kubernetes API server…", false);
  } else if (problem) {
    banner(problem, true);
  } else {
    banner("");
  }
}

function listen(query, render) {
  if (stream) stream.close();
  stream = new EventSource("/api/stream" + query);
  stream.onmessage = (event) => {
    const payload = JSON.parse(event.data);
    render(payload);
    showConnection(payload.connection, payload.problem);
  };
  // EventSource reconnects by itself; until then the page says the dashboard server is gone.
  stream.onerror = () => banner("Lost the connection to the dashboard server. Reconnecting by itself…", true);
}

function ago(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

// ---- the list -------------------------------------------------------------------------------

function listView() {
  const view = document.getElementById("view");
  const nsSelect = el("select", { id: "filter-namespace", onchange: (e) => { filters.namespace = e.target.value; draw(); } },
    el("option", { value: "" }, "all namespaces"));
  const phaseSelect = el("select", { id: "filter-phase", onchange: (e) => { filters.phase = e.target.value; draw(); } },
    el("option", { value: "" }, "any phase"),
    ...["Healthy", "Progressing", "Paused", "Degraded"].map((p) => el("option", { value: p }, p)));
  const nameInput = el("input", { id: "filter-name", type: "search", placeholder: "name contains…",
    oninput: (e) => { filters.name = e.target.value; draw(); } });
  nameInput.value = filters.name;
  const body = el("tbody", { id: "rollouts" });
  const table = el("table", {}, el("thead", {}, el("tr", {},
    ...["Namespace", "Name", "Phase", "Strategy", "Step", "Weight", "Stable", "Current", "Available", "Message"]
      .map((h) => el("th", {}, h)))), body);
  const empty = el("p", { id: "empty", class: "muted", hidden: true });
  view.replaceChildren(el("div", { class: "filters" }, nsSelect, phaseSelect, nameInput), table, empty);
  let rows = [];

  function draw() {
    const shown = rows.filter((r) => (!filters.namespace || r.namespace === filters.namespace)
      && (!filters.phase || r.phase === filters.phase)
      && (!filters.name || r.name.includes(filters.name)));
    body.replaceChildren(...shown.map((r) => el("tr", { "data-rollout": `${r.namespace}/${r.name}` },
      el("td", { class: "namespace" }, r.namespace),
      el("td", { class: "name" }, el("a", { href: `#/r/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}` }, r.name)),
      el("td", { class: "phase" }, el("span", { class: `badge ${r.health}`, title: r.health }, r.phase)),
      el("td", { class: "strategy" }, r.strategy),
      el("td", { class: "step" }, r.step),
      el("td", { class: "weight" }, r.weight === null || r.weight === undefined ? "-" : `${r.weight}%`),
      el("td", { class: "stable" }, r.stable || "-"),
      el("td", { class: "current" }, r.current || "-"),
      el("td", { class: "available" }, r.available),
      el("td", { class: "message" }, r.message || ""))));
    empty.hidden = shown.length > 0;
    empty.textContent = rows.length ? "No Rollout matches the filters." : `No Rollouts in ${config.scope}.`;
  }

  listen("", (payload) => {
    rows = payload.rollouts || [];
    const namespaces = [...new Set(rows.map((r) => r.namespace))].sort();
    const known = [...nsSelect.options].slice(1).map((o) => o.value);
    if (namespaces.join() !== known.join()) {
      nsSelect.replaceChildren(el("option", { value: "" }, "all namespaces"),
        ...namespaces.map((n) => el("option", { value: n }, n)));
    }
    nsSelect.value = filters.namespace;
    phaseSelect.value = filters.phase;
    draw();
  });
}

// ---- charts ---------------------------------------------------------------------------------

function numeric(value) {
  // A measurement's value as stored: "0.998", "[0.998, 0.97]" or compact JSON; the first number.
  try {
    const parsed = JSON.parse(value);
    if (typeof parsed === "number") return parsed;
    if (Array.isArray(parsed) && typeof parsed[0] === "number") return parsed[0];
  } catch (e) { /* not JSON: no number */ }
  return null;
}

function frame(width, height, pad) {
  return { w: width, h: height, l: pad.l, r: width - pad.r, t: pad.t, b: height - pad.b };
}

function axes(f, yTicks, yLabel, t0, t1) {
  const parts = [];
  for (const [value, y] of yTicks) {
    parts.push(svg("line", { class: "grid-line", x1: f.l, x2: f.r, y1: y, y2: y }));
    parts.push(svg("text", { x: f.l - 4, y: y + 4, "text-anchor": "end" }, yLabel(value)));
  }
  parts.push(svg("line", { class: "axis", x1: f.l, x2: f.l, y1: f.t, y2: f.b }));
  parts.push(svg("line", { class: "axis", x1: f.l, x2: f.r, y1: f.b, y2: f.b }));
  parts.push(svg("text", { x: f.l, y: f.h - 4 }, new Date(t0 * 1000).toLocaleTimeString()));
  parts.push(svg("text", { x: f.r, y: f.h - 4, "text-anchor": "end" }, new Date(t1 * 1000).toLocaleTimeString()));
  return parts;
}

function measurementChart(metric) {
  const points = (metric.measurements || []).map((m) => ({ ...m, t: Date.parse(m.at) / 1000, y: numeric(m.value) }));
  const f = frame(540, 180, { l: 52, r: 12, t: 12, b: 24 });
  if (!points.length) return el("p", { class: "muted" }, "no measurement yet");
  const values = points.filter((p) => p.y !== null).map((p) => p.y);
  const bands = metric.bands;  // the value range cut into bands, each judged by the condition
  let lo = values.length ? Math.min(...values, 0) : 0, hi = values.length ? Math.max(...values) : 1;
  if (hi === lo) hi = lo + 1;
  if (bands) { lo = bands.lo; hi = bands.hi; }
  let t0 = points[0].t, t1 = points[points.length - 1].t;
  if (t1 - t0 < 2) { t0 -= 1; t1 += 1; }  // a lone measurement sits inside the frame, not on its edge
  const x = (t) => f.l + ((t - t0) / (t1 - t0)) * (f.r - f.l);
  const y = (v) => f.b - ((v - lo) / (hi - lo)) * (f.b - f.t);
  const ticks = [lo, (lo + hi) / 2, hi].map((v) => [v, y(v)]);
  const drawn = points.map((p) => {
    const py = p.y === null ? (f.t + f.b) / 2 : y(p.y);
    const title = svg("title", {}, `${new Date(p.t * 1000).toLocaleTimeString()}: ${p.value || "-"} ${p.phase}${p.message ? " (" + p.message + ")" : ""}`);
    const group = [svg("circle", { class: `point ${p.phase}`, cx: x(p.t), cy: py, r: 5, "data-phase": p.phase, "data-value": p.value || "" }, title)];
    if (p.phase === "Failed") {
      group.push(svg("text", { class: "failed-mark", x: x(p.t) + 8, y: py - 8 < f.t + 10 ? py + 16 : py - 8 }, "✕ failed"));
    }
    return group;
  });
  const shaded = bands ? bands.passes.map((ok, i) => {
    const step = (hi - lo) / bands.passes.length;
    return svg("rect", { class: `band ${ok ? "passes" : "fails"}`, x: f.l, width: f.r - f.l,
      y: y(lo + (i + 1) * step), height: Math.max(y(lo + i * step) - y(lo + (i + 1) * step), 0.5) });
  }) : [];
  const line = values.length > 1 ? svg("polyline", { class: "line",
    points: points.filter((p) => p.y !== null).map((p) => `${x(p.t)},${y(p.y)}`).join(" ") }) : null;
  return svg("svg", { class: "chart measurements", viewBox: `0 0 ${f.w} ${f.h}`, role: "img",
    "aria-label": `measurements of ${metric.name}` },
    shaded, axes(f, ticks, (v) => (Math.abs(v) < 10 ? v.toFixed(3) : v.toFixed(0)), t0, t1), line, drawn.flat());
}

function trafficChart(points, stableName, canaryName) {
  const f = frame(540, 170, { l: 40, r: 12, t: 12, b: 24 });
  const now = Date.now() / 1000;
  if (!points.length) return el("p", { class: "muted" }, "no weight seen yet");
  const t0 = points[0].at, t1 = Math.max(now, t0 + 1);
  const x = (t) => f.l + ((t - t0) / (t1 - t0)) * (f.r - f.l);
  const y = (v) => f.b - (v / 100) * (f.b - f.t);
  const steps = (value) => {
    const coords = [];
    points.forEach((p, i) => {
      if (i) coords.push(`${x(p.at)},${y(value(points[i - 1]))}`);
      coords.push(`${x(p.at)},${y(value(p))}`);
    });
    coords.push(`${x(t1)},${y(value(points[points.length - 1]))}`);
    return coords.join(" ");
  };
  const last = points[points.length - 1];
  return svg("svg", { class: "chart traffic", viewBox: `0 0 ${f.w} ${f.h}`, role: "img", "aria-label": "traffic split over time" },
    axes(f, [0, 50, 100].map((v) => [v, y(v)]), (v) => `${v}%`, t0, t1),
    svg("polyline", { class: "stable-line", points: steps((p) => 100 - p.canary) }),
    svg("polyline", { class: "line", points: steps((p) => p.canary) }),
    svg("text", { x: f.r - 4, y: f.t + 12, "text-anchor": "end" },
      `${canaryName || "canary"} ${last.canary}% (solid) · ${stableName || "stable"} ${100 - last.canary}% (dashed)`));
}

// ---- one Rollout ----------------------------------------------------------------------------

function askConfirmation(namespace, name, action) {
  const [label, what] = ACTION_TEXT[action];
  pending = { namespace, name, action };
  document.getElementById("confirm-text").textContent = `${label} rollout ${namespace}/${name}? This will ${what}.`;
  document.getElementById("confirm").showModal();
}

async function confirmed() {
  const { namespace, name, action } = pending;
  pending = null;
  const key = `${namespace}/${name}`;
  let answer;
  try {
    const response = await fetch(`/api/rollouts/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/${action}`,
      { method: "POST", headers: { "X-CSRF-Token": config.csrfToken, "Content-Type": "application/json" }, body: "{}" });
    answer = await response.json();
  } catch (e) {
    answer = { ok: false, message: `the dashboard server did not answer: ${e}` };
  }
  lastResult = { key, ok: answer.ok, message: answer.message };
  const line = document.getElementById("action-result");
  if (line) { line.textContent = answer.message; line.className = answer.ok ? "ok" : "failed"; }
}

function actionsBar(page, namespace, name) {
  if (config.readOnly) return null;
  const key = `${namespace}/${name}`;
  const result = lastResult && lastResult.key === key ? lastResult : null;
  const buttons = Object.entries(ACTION_TEXT).map(([action, [label]]) => {
    const why = (page.refusals || {})[action];
    return el("button", { "data-action": action, class: why ? "unavailable" : "",
      title: why ? `refused now: ${why}` : ACTION_TEXT[action][1], onclick: () => askConfirmation(namespace, name, action) }, label);
  });
  return el("section", { class: "actions", id: "actions" }, ...buttons,
    el("span", { id: "action-result", class: result ? (result.ok ? "ok" : "failed") : "" }, result ? result.message : ""));
}

function stepsSection(page) {
  if (!page.steps.length) return null;
  const now = Date.now() / 1000;
  return el("section", { id: "steps" }, el("h3", {}, "Steps"), el("ol", { class: "steps" },
    ...page.steps.map((s) => {
      let spent = "";
      if (s.pause) {
        const start = s.startedAt ? Date.parse(s.startedAt) / 1000 : s.entered;
        if (s.state === "current" && start) {
          spent = el("span", { class: "since", "data-since": start }, ` — paused for ${ago(now - start)}`);
        } else if (s.state === "done" && s.entered && s.left) spent = ` — paused ${ago(s.left - s.entered)}`;
      }
      return el("li", { class: s.state === "to come" ? "todo" : s.state, "data-step": s.index }, s.text, spent);
    })));
}

function revisionsSection(page) {
  return el("section", { id: "revisions" }, el("h3", {}, "Revisions"),
    page.revisions.length ? el("table", {}, el("thead", {}, el("tr", {},
      ...["#", "Revision", "Role", "ReplicaSet", "Ready", "Available", "Images", "Pods"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...page.revisions.map((r) => el("tr", { "data-revision": r.revision },
      el("td", {}, r.number), el("td", {}, r.revision), el("td", {}, r.role || "-"), el("td", {}, r.replicaset),
      el("td", {}, `${r.ready}/${r.desired}`), el("td", {}, `${r.available}/${r.desired}`),
      el("td", {}, r.images.join(", ")),
      el("td", { class: "pods" }, r.pods.length ? r.pods.map((p) => el("div", { class: `pod ${p.ready ? "ready" : "notready"}` },
        `${p.name} ${p.phase}${p.ready ? " ready" : " not ready"}${p.deleting ? " (terminating)" : ""}`)) : "-")))))
      : el("p", { class: "muted" }, "none yet"));
}

function analysisSection(page) {
  if (!page.analysisRuns.length) return null;
  return el("section", { id: "analysis" }, el("h3", {}, "Analysis"),
    ...page.analysisRuns.map((run) => el("div", { class: "run", "data-run": run.name },
      el("p", {}, el("strong", {}, `${run.name}`), ` on ${run.revision}: `,
        el("span", { class: `badge ${run.phase === "Failed" ? "Degraded" : run.phase === "Successful" ? "Healthy" : "Progressing"}` }, run.phase),
        run.message ? ` ${run.message}` : ""),
      el("div", { class: "grid" }, ...(run.metrics || []).map((m) => {
        const condition = (page.conditions[run.name] || {})[m.name] || {};
        return el("div", { class: "metric", "data-metric": m.name },
          el("p", {}, el("strong", {}, m.name), ` ${m.phase}: ${m.successful || 0} successful, ${m.failed || 0} failed, `
            + `${m.inconclusive || 0} inconclusive, ${m.error || 0} errors`),
          measurementChart(m),
          el("p", { class: "condition" },
            condition.successCondition ? `success when ${condition.successCondition}` : "",
            condition.successCondition && condition.failureCondition ? " · " : "",
            condition.failureCondition ? `failure when ${condition.failureCondition}` : "",
            !condition.successCondition && !condition.failureCondition ? "condition: template not readable" : "",
            m.bands ? " (shaded: green where a value passes, red where it fails)" : ""));
      })))));
}

function rolloutView(namespace, name) {
  const view = document.getElementById("view");
  view.replaceChildren(el("p", { class: "muted" }, `Loading ${namespace}/${name}…`));
  listen(`?namespace=${encodeURIComponent(namespace)}&name=${encodeURIComponent(name)}`, (page) => {
    if (page.gone) {
      view.replaceChildren(el("section", { id: "gone" }, el("h2", {}, `${namespace}/${name}`),
        el("p", { class: "error" }, `Rollout ${namespace}/${name} is gone: it was deleted, or it is no longer visible to you.`),
        el("p", {}, el("a", { href: "#/" }, "Back to the list"))));
      return;
    }
    if (!page.summary) return;  // not listed yet: the banner says why
    const s = page.summary;
    const head = el("section", { class: "head", id: "head" },
      el("h2", {}, `${namespace}/${name} `, el("span", { class: `badge ${page.health}`, id: "health" }, page.health)),
      el("p", {}, `Phase ${s.phase} · ${s.strategy}`, s.step !== "-" ? ` · step ${s.step}` : "",
        ` · stable ${s.stable || "-"} · current ${s.current || "-"} · available ${s.available}`),
      page.invalidSpec ? el("p", { class: "error", id: "invalid-spec" }, `InvalidSpec: ${page.invalidSpec}`) : null,
      el("p", { id: "message" }, page.healthMessage || ""),
      page.abortReason ? el("p", { class: "error", id: "abort-reason" }, `Aborted: ${page.abortReason}`) : null);
    const routes = el("section", { id: "routes" }, el("h3", {}, "Routes (weights read back from each router)"),
      page.routes.length ? el("ul", {}, ...page.routes.map((r) => el("li", { class: "route" }, r)))
        : el("p", { class: "muted" }, s.strategy === "canary" ? `no route: canary by replica count, weight ${s.weight ?? 0}%` : "no route"));
    const traffic = el("section", { id: "traffic" }, el("h3", {}, "Traffic split over time"),
      trafficChart(page.traffic, page.stableService, page.canaryService),
      el("p", { class: "muted" }, "Kept in this dashboard's memory from watch events since it started (not stored anywhere)."));
    const events = el("section", { id: "events" }, el("h3", {}, "Recent Events"), page.events.length ? el("table", {},
      el("tbody", {}, ...page.events.map((e) => el("tr", { class: e.type },
        el("td", {}, e.at), el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.object),
        el("td", {}, e.message + (e.count > 1 ? ` (×${e.count})` : ""))))))
      : el("p", { class: "muted" }, "none"));
    view.replaceChildren(head, actionsBar(page, namespace, name) || "", stepsSection(page) || "", routes,
      revisionsSection(page), analysisSection(page) || "", s.strategy === "canary" ? traffic : "", events);
  });
}

// ---- routing --------------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/r\/([^/]+)\/([^/]+)$/);
  if (match) rolloutView(decodeURIComponent(match[1]), decodeURIComponent(match[2]));
  else listView();
}

async function start() {
  config = await (await fetch("/api/config")).json();
  document.getElementById("scope").textContent = `Rollouts in ${config.scope}`;
  document.getElementById("mode").textContent = config.readOnly ? "read-only" : "";
  const dialog = document.getElementById("confirm");
  dialog.addEventListener("close", () => { if (dialog.returnValue === "yes" && pending) confirmed(); else pending = null; });
  window.addEventListener("hashchange", route);
  route();
}

// The current pause's time counts up between updates.
setInterval(() => {
  for (const span of document.querySelectorAll("span.since")) {
    span.textContent = ` — paused for ${ago(Date.now() / 1000 - Number(span.dataset.since))}`;
  }
}, 1000);
document.addEventListener("DOMContentLoaded", start);
