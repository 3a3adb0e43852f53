// vaurien console: one stream of state (GET /events) drives the page; every
// change goes through the admin API's own calls. Forms are built from the
// behavior declarations (GET /catalog), and the API alone validates them:
// its error is shown next to the field it names.
"use strict";

const state = {
  catalog: [],          // behavior declarations
  routes: new Map(),    // name -> {el, parts, data, history}
  experiments: new Map(),
  source: null,
  lastEvent: 0,
};
const HISTORY = 60;      // points of each sparkline, one per event
const TOKEN_KEY = "vaurien.token";

// ---- small DOM helpers ---------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k != null) el.append(k);
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

let uid = 0;
function nextId(prefix) { uid += 1; return `${prefix}-${uid}`; }

function rate(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }
function bytes(v) {
  if (v >= 1 << 20) return `${(v / (1 << 20)).toFixed(1)} MiB/s`;
  if (v >= 1024) return `${(v / 1024).toFixed(1)} KiB/s`;
  return `${v.toFixed(0)} B/s`;
}
function secondsLeft(iso) { return Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 1000)); }

// mixText writes a mix as a person reads it: options left at their
// declared default are not shown.
function mixText(mix) {
  if (!mix || mix.length === 0) return "dummy (pass-through)";
  return mix.map((b) => {
    const decl = declOf(b.name);
    const dflt = (k) => { const o = decl && decl.options.find((x) => x.name === k); return o ? JSON.stringify(o.default) : undefined; };
    const opts = Object.entries(b.options || {}).filter(([k, v]) => JSON.stringify(v) !== dflt(k))
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("|") : v}`);
    const match = b.match ? " when " + Object.entries(b.match).map(([k, v]) => `${k}=${[].concat(v).join("|")}`).join(" ") : "";
    return `${b.name} ${b.percent}%${opts.length ? " (" + opts.join(", ") + ")" : ""}${match}`;
  }).join(" · ");
}

function notice(msg, ok) {
  const el = document.getElementById("notice");
  el.textContent = msg;
  el.classList.toggle("ok", !!ok);
  el.hidden = !msg;
}

// ---- the API -------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.diagnostics = (body && body.diagnostics) || [];
  }
}

// call sends one request. A call that changes something carries the token
// of this tab, if one was given; on 401 the page asks for it once and
// tries again. The token lives in sessionStorage only: no cookie ever
// carries authority.
async function call(method, path, body, retried) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && method !== "GET") headers["Authorization"] = `Bearer ${token}`;
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit", cache: "no-store" });
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON: keep the status */ }
  if (resp.status === 401 && !retried) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (await askToken(token ? "The token was refused. " : "")) return call(method, path, body, true);
  }
  if (!resp.ok) throw new APIError(resp.status, data);
  return data;
}

function askToken(prefix) {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const why = document.getElementById("token-why");
  if (!why.dataset.text) why.dataset.text = why.textContent;
  why.textContent = prefix + why.dataset.text;
  input.value = "";
  return new Promise((resolve) => {
    const form = document.getElementById("token-form");
    const cancel = document.getElementById("token-cancel");
    const done = (ok) => {
      form.removeEventListener("submit", onSubmit);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      resolve(ok);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      if (!input.value) return;
      sessionStorage.setItem(TOKEN_KEY, input.value);
      document.getElementById("forget-token").hidden = false;
      done(true);
    };
    const onCancel = (ev) => { ev.preventDefault(); done(false); };
    form.addEventListener("submit", onSubmit);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    input.focus();
  });
}

// act runs a change and reports its outcome in the notice line.
async function act(what, fn) {
  try {
    await fn();
    notice(`${what}: done.`, true);
    return true;
  } catch (err) {
    const more = err.diagnostics && err.diagnostics.length ? "\n" + err.diagnostics.join("\n") : "";
    notice(`${what}: ${err.message}${more}`);
    return false;
  }
}

// ---- routes --------------------------------------------------------------

function routeCard(name) {
  const id = nextId("route");
  const p = {};
  p.title = h("h3", { id: `${id}-title`, text: name });
  p.badges = h("span", { class: "row" });
  p.listen = h("dd");
  p.backend = h("dd");
  p.mix = h("dd", { "data-part": "mix" });
  p.configured = h("dd", { "data-part": "configured" });
  p.timed = h("dd", { "data-part": "timed" });
  p.active = h("dd", { "data-part": "active" });
  p.conns = h("dd", { "data-part": "connections" });
  p.reqs = h("dd", { "data-part": "requests" });
  p.bytes = h("dd", { "data-part": "bytes" });
  p.faults = h("ul", { class: "faults", "data-part": "faults", "aria-label": "Faults per second by behavior" });
  p.spark = svg("svg", { class: "spark", viewBox: `0 0 ${HISTORY - 1} 36`, preserveAspectRatio: "none", role: "img", "aria-label": "Requests (blue) and faults (red) per second, last minute" });
  p.sparkReq = svg("polyline", { class: "req", points: "" });
  p.sparkFlt = svg("polyline", { class: "flt", points: "" });
  p.spark.append(p.sparkReq, p.sparkFlt);
  p.toggle = h("button", { type: "button", "data-action": "toggle", onclick: () => toggleRoute(name) });

  const backendId = nextId("backend");
  p.backendInput = h("input", { id: backendId, name: "backend", type: "text", autocomplete: "off", spellcheck: "false" });
  p.backendError = h("p", { class: "field-error", "data-error-for": "backend", role: "alert" });
  p.backendInput.setAttribute("aria-describedby", p.backendError.id = nextId("err"));
  const backendForm = h("form", { class: "row", "data-form": "backend", onsubmit: (ev) => { ev.preventDefault(); changeBackend(name); } },
    h("label", { for: backendId, class: "grow" }, "New backend", p.backendInput),
    h("button", { type: "submit" }, "Change backend"));

  const forId = nextId("for");
  p.whatifFor = h("input", { id: forId, type: "text", inputmode: "numeric", value: "30", "data-field": "whatif-duration" });
  const whatif = h("div", { class: "whatif row", role: "group", "aria-label": `What if, on ${name}` },
    h("span", { text: "What if:" }),
    h("button", { type: "button", "data-action": "whatif-slow", onclick: () => whatIf(name, "slow") }, "Slow"),
    h("button", { type: "button", "data-action": "whatif-errors", onclick: () => whatIf(name, "errors") }, "Errors"),
    h("button", { type: "button", "data-action": "whatif-down", onclick: () => whatIf(name, "down") }, "Down"),
    h("span", { class: "inline" }, h("label", { for: forId, text: "for" }), p.whatifFor, h("span", { text: "s" })));

  p.editor = h("details", { class: "editor" }, h("summary", { text: "Edit the mix" }));
  p.editor.addEventListener("toggle", () => { if (p.editor.open) openEditor(name); });

  const el = h("article", { class: "route", "data-route": name, "aria-labelledby": p.title.id },
    h("header", {}, p.title, p.badges),
    h("dl", { class: "facts" },
      h("dt", { text: "Listen" }), p.listen,
      h("dt", { text: "Backend" }), p.backend,
      h("dt", { text: "Live mix" }), p.mix,
      h("dt", { text: "File's mix" }), p.configured,
      h("dt", { text: "Timed change" }), p.timed),
    h("dl", { class: "counters" },
      h("div", {}, h("dt", { text: "Open conns" }), p.active),
      h("div", {}, h("dt", { text: "Conns/s" }), p.conns),
      h("div", {}, h("dt", { text: "Requests/s" }), p.reqs),
      h("div", {}, h("dt", { text: "Traffic" }), p.bytes)),
    p.faults, p.spark,
    h("div", { class: "row" }, p.toggle,
      h("button", { type: "button", "data-action": "reset", onclick: () => act(`Reset ${name}`, () => call("POST", `/routes/${encodeURIComponent(name)}/reset`)) }, "Reset route")),
    whatif, backendForm, p.backendError, p.editor);
  return { el, parts: p, data: null, history: [] };
}

function updateRoute(r, d) {
  const p = r.parts;
  r.data = d;
  r.el.dataset.enabled = String(d.enabled);
  p.badges.replaceChildren(...[
    h("span", { class: "badge", text: d.protocol }),
    h("span", { class: d.enabled ? "badge" : "badge off", "data-part": "enabled", text: d.enabled ? "enabled" : "disabled" }),
    d.default ? h("span", { class: "badge", text: "default" }) : null,
    d.reverts_at ? h("span", { class: "badge timed", text: "timed change" }) : null].filter(Boolean));
  p.listen.textContent = d.listen || "—";
  p.backend.textContent = d.backend;
  p.mix.textContent = mixText(d.mix);
  p.configured.textContent = mixText(d.configured_mix);
  p.timed.textContent = d.reverts_at ? `reverts to the previous mix in ${secondsLeft(d.reverts_at)} s` : "none";
  p.timed.dataset.revertsAt = d.reverts_at || "";
  p.active.textContent = String(d.stats.active);
  p.conns.textContent = rate(d.rates.connections);
  p.reqs.textContent = rate(d.rates.requests);
  p.bytes.textContent = bytes(d.rates.bytes);
  const faults = Object.entries(d.rates.faults || {}).sort();
  p.faults.replaceChildren(...(faults.length
    ? faults.map(([b, v]) => h("li", { "data-behavior": b, text: `${b}: ${rate(v)} faults/s (${d.faults[b] || 0} in all)` }))
    : [h("li", { class: "none", text: `No fault in the last second (${d.stats.faults} in all)` })]));
  p.toggle.textContent = d.enabled ? "Disable" : "Enable";
  p.toggle.className = d.enabled ? "danger" : "primary";
  if (document.activeElement !== p.backendInput && !p.backendInput.value) p.backendInput.placeholder = d.backend;

  const flt = Object.values(d.rates.faults || {}).reduce((a, b) => a + b, 0);
  r.history.push([d.rates.requests || d.rates.connections, flt]);
  if (r.history.length > HISTORY) r.history.shift();
  const top = Math.max(1, ...r.history.map(([a, b]) => Math.max(a, b)));
  const pts = (i) => r.history.map((v, x) => `${x + HISTORY - r.history.length},${(35 - (v[i] / top) * 33).toFixed(1)}`).join(" ");
  p.sparkReq.setAttribute("points", pts(0));
  p.sparkFlt.setAttribute("points", pts(1));
}

function renderRoutes(routes) {
  const list = document.getElementById("route-list");
  const seen = new Set();
  for (const d of routes) {
    seen.add(d.name);
    let r = state.routes.get(d.name);
    if (!r) {
      r = routeCard(d.name);
      state.routes.set(d.name, r);
    }
    updateRoute(r, d);
  }
  for (const [name, r] of state.routes) {
    if (!seen.has(name)) { r.el.remove(); state.routes.delete(name); }
  }
  // Keep the server's order (by name) without moving a card that has focus.
  routes.forEach((d, i) => {
    const el = state.routes.get(d.name).el;
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null);
  });
  document.getElementById("no-routes").hidden = routes.length > 0;
}

function toggleRoute(name) {
  const r = state.routes.get(name);
  const on = !(r.data && r.data.enabled);
  return act(`${on ? "Enable" : "Disable"} ${name}`, () => call("POST", `/routes/${encodeURIComponent(name)}/${on ? "enable" : "disable"}`));
}

async function changeBackend(name) {
  const p = state.routes.get(name).parts;
  setFieldError(p.backendInput, p.backendError, "");
  try {
    await call("PUT", `/routes/${encodeURIComponent(name)}/backend`, { backend: p.backendInput.value.trim() });
    p.backendInput.value = "";
    notice(`Backend of ${name}: done.`, true);
  } catch (err) {
    if (err.field === "backend") setFieldError(p.backendInput, p.backendError, err.message);
    else notice(`Backend of ${name}: ${err.message}`);
  }
}

function setFieldError(input, holder, msg) {
  holder.textContent = msg;
  if (input) {
    if (msg) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

// The one-click faults: a timed change, so that it ends by itself.
const WHATIF = {
  slow: [{ name: "delay", percent: 100, options: { sleep: "1s" } }],
  errors: [{ name: "error", percent: 50 }],
  down: [{ name: "down", percent: 100 }],
};

function whatIf(name, kind) {
  const p = state.routes.get(name).parts;
  // Empty is for good; what is not a number of seconds goes as typed, and
  // the API says what is wrong with it.
  const raw = p.whatifFor.value.trim();
  const body = { behaviors: WHATIF[kind] };
  if (raw !== "") body.duration = /^[0-9.]+$/.test(raw) ? `${raw}s` : raw;
  return act(`What if ${name} were ${kind}${body.duration ? ` for ${body.duration}` : ""}`, () => call("PUT", `/routes/${encodeURIComponent(name)}/mix`, body));
}

// ---- the mix editor, built from the declarations ---------------------------

function declOf(name) { return state.catalog.find((b) => b.name === name); }

function openEditor(name) {
  const r = state.routes.get(name);
  const old = r.parts.editor.querySelector("form");
  if (old) old.remove();
  r.parts.editor.append(mixForm(name, (r.data && r.data.mix) || []));
}

function mixForm(route, mix) {
  const entries = h("div", { class: "entries" });
  const formError = h("p", { class: "form-error", role: "alert", "data-error-for": "" });
  const durId = nextId("dur");
  const duration = h("input", { id: durId, name: "duration", type: "text", inputmode: "numeric", placeholder: "until changed", "data-field": "duration" });
  const durError = h("p", { class: "field-error", role: "alert", "data-error-for": "duration", id: nextId("err") });
  duration.setAttribute("aria-describedby", durError.id);
  const form = h("form", { class: "mix", "data-form": "mix", novalidate: true },
    entries,
    h("div", { class: "row" },
      h("button", { type: "button", "data-action": "add-behavior", onclick: () => { entries.append(entryFields(entries, { name: "delay", percent: 10 })); renumber(entries); } }, "Add a behavior")),
    h("div", { class: "field" }, h("label", { for: durId, text: "For N seconds (empty: until changed)" }), duration, durError),
    formError,
    h("div", { class: "row" },
      h("button", { type: "submit", class: "primary", "data-action": "apply" }, "Apply"),
      h("button", { type: "button", "data-action": "load-file-mix", onclick: () => { entries.replaceChildren(...((state.routes.get(route).data || {}).configured_mix || []).map((b) => entryFields(entries, b))); renumber(entries); } }, "Load the file's mix")));
  for (const b of mix) entries.append(entryFields(entries, b));
  renumber(entries);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); applyMix(route, form, entries, duration, formError); });
  return form;
}

// entryFields is one behavior of the mix: its name, percent and every
// declared option, each labelled, with its kind, default and doc.
function entryFields(entries, b) {
  const fs = h("fieldset", { class: "entry" });
  const nameId = nextId("beh");
  const select = h("select", { id: nameId, "data-key": "name" }, state.catalog.map((d) => h("option", { value: d.name, text: d.name, selected: d.name === b.name })));
  const pctId = nextId("pct");
  const pct = h("input", { id: pctId, type: "text", inputmode: "decimal", value: b.percent != null ? String(b.percent) : "", "data-key": "percent" });
  const optsBox = h("div", { class: "options" });
  fs.append(h("legend", {}),
    field(nameId, "Behavior", select, "name", ""),
    field(pctId, "Percent", pct, "percent", "share of the draws, 0 to 100"),
    optsBox,
    h("div", { class: "row" }, h("button", { type: "button", class: "danger", "data-action": "remove-behavior", onclick: () => { fs.remove(); renumber(entries); } }, "Remove")));
  const fillOptions = (values) => {
    const decl = declOf(select.value);
    optsBox.replaceChildren(...(decl ? decl.options : []).map((o) => optionField(o, values[o.name])));
  };
  select.addEventListener("change", () => { fillOptions({}); renumber(entries); });
  fillOptions(b.options || {});
  fs._match = b.match;
  return fs;
}

function field(id, text, input, key, help) {
  const err = h("p", { class: "field-error", role: "alert", "data-error-key": key, id: nextId("err") });
  const helpEl = help ? h("p", { class: "help", id: nextId("help"), text: help }) : null;
  input.setAttribute("aria-describedby", [helpEl && helpEl.id, err.id].filter(Boolean).join(" "));
  return h("div", { class: "field" }, h("label", { for: id, text }), input, helpEl, err);
}

function optionField(o, value) {
  const id = nextId("opt");
  // A value at its default shows as the placeholder, and is not sent.
  if (JSON.stringify(value) === JSON.stringify(o.default)) value = undefined;
  let input;
  const shown = (v) => (Array.isArray(v) ? v.join(", ") : v == null ? "" : String(v));
  if (o.kind === "bool") {
    input = h("select", { id }, h("option", { value: "", text: `default (${o.default})` }),
      h("option", { value: "true", text: "true", selected: value === true }),
      h("option", { value: "false", text: "false", selected: value === false }));
  } else if (o.choices && o.choices.length) {
    input = h("select", { id }, h("option", { value: "", text: `default (${o.default})` }),
      o.choices.map((c) => h("option", { value: c, text: c, selected: value === c })));
  } else {
    input = h("input", { id, type: "text", value: shown(value), placeholder: shown(o.default), autocomplete: "off", spellcheck: "false",
      inputmode: o.kind === "int" || o.kind === "number" ? "decimal" : null });
  }
  input.dataset.option = o.name;
  input.dataset.kind = o.kind;
  // The range in the API's own words, so that the help and the error
  // read alike.
  const range = o.range ? ` ${o.range[0].toUpperCase()}${o.range.slice(1)}.` : "";
  return field(id, `${o.name} (${o.kind})`, input, `options.${o.name}`, `${o.doc}. Default ${shown(o.default) || "none"}.${range}${o.no_effect ? " " + o.no_effect : ""}`);
}

// renumber names each entry and its error holders by position, as the
// API names fields: behaviors[0].options.sleep.
function renumber(entries) {
  [...entries.children].forEach((fs, i) => {
    fs.querySelector("legend").textContent = `Behavior ${i + 1}`;
    fs.dataset.index = String(i);
    for (const err of fs.querySelectorAll("[data-error-key]")) err.dataset.errorFor = `behaviors[${i}].${err.dataset.errorKey}`;
  });
}

// value turns what was typed into the JSON the API takes; what does not
// parse is sent as typed, and the API says what is wrong with it.
function value(kind, raw) {
  const num = (s) => (s.trim() !== "" && !Number.isNaN(Number(s)) ? Number(s) : s);
  switch (kind) {
    case "bool": return raw === "true";
    case "int": case "number": return num(raw);
    case "list of strings": return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "list of ints": return raw.split(",").map((s) => s.trim()).filter(Boolean).map(num);
    default: return raw;
  }
}

async function applyMix(route, form, entries, duration, formError) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const behaviors = [...entries.children].map((fs) => {
    const b = { name: fs.querySelector('[data-key="name"]').value, percent: value("number", fs.querySelector('[data-key="percent"]').value), options: {} };
    for (const input of fs.querySelectorAll("[data-option]")) {
      if (input.value !== "") b.options[input.dataset.option] = value(input.dataset.kind, input.value);
    }
    if (fs._match) b.match = fs._match;
    return b;
  });
  const body = { behaviors };
  const secs = duration.value.trim();
  if (secs !== "") body.duration = /^[0-9.]+$/.test(secs) ? `${secs}s` : secs;
  try {
    await call("PUT", `/routes/${encodeURIComponent(route)}/mix`, body);
    notice(`Mix of ${route}: applied${body.duration ? ` for ${body.duration}` : ""}.`, true);
    state.routes.get(route).parts.editor.open = false;
    form.remove(); // opened again, it starts from the live mix
  } catch (err) {
    const holder = err.field && form.querySelector(`[data-error-for="${CSS.escape(err.field)}"]`);
    if (holder) {
      holder.textContent = err.message;
      const input = holder.parentElement.querySelector("input, select");
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    } else {
      formError.textContent = err.message;
    }
  }
}

// ---- experiments -----------------------------------------------------------

function renderExperiments(list) {
  const section = document.getElementById("experiments");
  if (!list) { section.hidden = true; return; }
  section.hidden = false;
  const box = document.getElementById("experiment-list");
  const seen = new Set();
  for (const x of list) {
    seen.add(x.name);
    let e = state.experiments.get(x.name);
    if (!e) {
      e = experimentCard(x.name);
      state.experiments.set(x.name, e);
      box.append(e.el);
    }
    updateExperiment(e, x);
  }
  for (const [name, e] of state.experiments) if (!seen.has(name)) { e.el.remove(); state.experiments.delete(name); }
  document.getElementById("no-experiments").hidden = list.length > 0;
}

function experimentCard(name) {
  const p = {};
  const id = nextId("exp");
  p.title = h("h3", { id, text: name });
  p.state = h("span", { class: "badge", "data-part": "state" });
  p.facts = h("dd", {});
  p.phase = h("dd", { "data-part": "phase" });
  p.probes = h("dd", { "data-part": "probes" });
  p.slos = h("ul", { class: "faults", "data-part": "slos", "aria-label": "SLO verdicts" });
  p.timeline = svg("svg", { class: "timeline", viewBox: "0 0 600 70", preserveAspectRatio: "none", role: "img", "aria-label": `Timeline of ${name}` });
  p.start = h("button", { type: "button", class: "primary", "data-action": "start", onclick: () => act(`Start ${name}`, () => call("POST", `/experiments/${encodeURIComponent(name)}/start`)) }, "Start");
  p.stop = h("button", { type: "button", class: "danger", "data-action": "stop", onclick: () => act(`Stop ${name}`, () => call("POST", `/experiments/${encodeURIComponent(name)}/stop`)) }, "Stop");
  p.report = h("a", { "data-part": "report", target: "_blank", rel: "noopener" }, "Last report");
  const el = h("article", { class: "experiment", "data-experiment": name, "aria-labelledby": id },
    h("header", {}, p.title, p.state),
    h("dl", { class: "facts" }, h("dt", { text: "Routes" }), p.facts, h("dt", { text: "Phase" }), p.phase, h("dt", { text: "Probes" }), p.probes),
    p.timeline, p.slos,
    h("div", { class: "row" }, p.start, p.stop, p.report));
  return { el, parts: p, samples: [], run: "" };
}

function updateExperiment(e, x) {
  const p = e.parts;
  const last = x.last;
  const st = last ? last.state : "idle";
  p.state.textContent = st + (last && last.remote ? " (remote)" : "");
  p.facts.textContent = `${(x.routes || []).join(", ") || "—"}${x.duration ? `; takes ${x.duration}` : ""}`;
  const running = st === "running";
  p.start.hidden = !x.in_config || running;
  p.stop.hidden = !running;
  // A run writes a report when its experiment has a report directory.
  p.report.hidden = !(last && last.report);
  if (last && last.report) p.report.setAttribute("href", last.report);
  p.phase.textContent = running && last.phase
    ? `${last.phase}${last.phase_ends ? `, ${secondsLeft(last.phase_ends)} s left` : ""}; ends in ${secondsLeft(last.ends)} s`
    : last && last.error ? last.error : "—";
  p.probes.textContent = last && last.probes && last.probes.length
    ? last.probes.map((pr) => `${pr.name}: ${pr.requests} attempts, ${pr.errors} errors, p99 ${pr.p99}`).join("; ")
    : "—";
  p.slos.replaceChildren(...((last && last.slos) || []).map((s) => h("li", { class: s.ok ? "slo-ok" : "slo-bad", text: `${s.ok ? "✔" : "✘"} ${s.name}${s.during ? ` (${s.during})` : ""}: ${(s.checks || []).map((c) => c.text).join(", ")}` })));
  if (last && last.run !== e.run) { e.run = last.run; e.samples = []; }
  if (running) {
    const p99 = Math.max(0, ...(last.probes || []).map((pr) => parseDuration(pr.p99)));
    e.samples.push([Date.now(), p99]);
  }
  drawTimeline(e, last);
}

function parseDuration(s) {
  let total = 0;
  for (const [, n, unit] of String(s).matchAll(/([0-9.]+)(ns|µs|us|ms|s|m|h)/g)) {
    total += Number(n) * { ns: 1e-9, "µs": 1e-6, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }[unit];
  }
  return total;
}

// drawTimeline shows the run from start to end: the phase under way, where
// now is, and the worst probe p99 seen by this page since the run began.
function drawTimeline(e, last) {
  const t = e.parts.timeline;
  t.replaceChildren();
  t.classList.toggle("empty", !last || !last.started || !last.ends);
  if (!last || !last.started || !last.ends) return;
  const t0 = Date.parse(last.started);
  const t1 = Math.max(Date.parse(last.ends), t0 + 1);
  const x = (ms) => Math.min(600, Math.max(0, ((ms - t0) / (t1 - t0)) * 600));
  const now = Math.min(Date.now(), t1);
  t.append(svg("rect", { class: "phase", x: 0, y: 0, width: x(now), height: 22 }));
  if (last.state === "running" && last.phase) {
    const end = last.phase_ends ? Date.parse(last.phase_ends) : t1;
    t.append(svg("rect", { class: "phase current", x: x(now), y: 0, width: Math.max(2, x(end) - x(now)), height: 22 }));
    const label = svg("text", { x: Math.min(x(now) + 4, 520), y: 15 });
    label.textContent = last.phase;
    t.append(label);
  }
  if (e.samples.length > 1) {
    const top = Math.max(0.001, ...e.samples.map((s) => s[1]));
    t.append(svg("polyline", { class: "p99", points: e.samples.map(([ms, v]) => `${x(ms).toFixed(1)},${(68 - (v / top) * 40).toFixed(1)}`).join(" ") }));
    const label = svg("text", { x: 2, y: 36 });
    label.textContent = `p99 up to ${(top * 1000).toFixed(0)} ms`;
    t.append(label);
  }
  t.append(svg("line", { class: "now", x1: x(now), x2: x(now), y1: 0, y2: 70 }));
}

// ---- the stream ------------------------------------------------------------

function setConn(s, text) {
  const el = document.getElementById("conn");
  if (el.dataset.state === s && el.textContent === text) return;
  el.dataset.state = s;
  el.textContent = text;
}

// connect opens the one stream of the page. EventSource reconnects by
// itself after a dropped connection; after an answer that is not a stream
// (a restarting server's 503) it gives up, and the page starts it again.
function connect() {
  if (state.source) state.source.close();
  const src = new EventSource("/events");
  state.source = src;
  src.addEventListener("open", () => {
    setConn("live", "Live");
    if (!state.catalog.length) loadCatalog(); // the server was down when the page loaded
  });
  src.addEventListener("state", (ev) => {
    const snap = JSON.parse(ev.data);
    state.lastEvent = Date.now();
    setConn("live", "Live");
    renderRoutes(snap.routes);
    renderExperiments(snap.experiments);
  });
  src.addEventListener("error", () => {
    setConn("lost", "Connection lost: reconnecting…");
    if (src.readyState === EventSource.CLOSED) setTimeout(() => { if (state.source === src) connect(); }, 2000);
  });
}

// Countdowns move between events too, and a stream that went quiet
// without an error (a suspended laptop) is reopened.
setInterval(() => {
  for (const r of state.routes.values()) {
    const at = r.parts.timed.dataset.revertsAt;
    if (at) r.parts.timed.textContent = `reverts to the previous mix in ${secondsLeft(at)} s`;
  }
  if (state.source && state.source.readyState === EventSource.OPEN && state.lastEvent && Date.now() - state.lastEvent > 20000) {
    setConn("lost", "Connection lost: reconnecting…");
    connect();
  }
}, 1000);

async function start() {
  document.getElementById("reset-all").addEventListener("click", () => act("Reset every route", () => call("POST", "/reset")));
  document.getElementById("reload").addEventListener("click", () => act("Reload the file", () => call("POST", "/reload")));
  const forget = document.getElementById("forget-token");
  forget.hidden = !sessionStorage.getItem(TOKEN_KEY);
  forget.addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); forget.hidden = true; notice("The token is forgotten.", true); });
  await loadCatalog();
  connect();
}

async function loadCatalog() {
  try {
    state.catalog = (await call("GET", "/catalog")).behaviors;
  } catch (err) {
    notice(`Could not read the behavior declarations: ${err.message}`);
  }
}

start();
