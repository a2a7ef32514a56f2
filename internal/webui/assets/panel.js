// The control panel: one page whose views (#/, #/nodes, ...) read the
// cluster API of the service that served it. Text from the API is only
// ever set as text, never parsed as HTML.
"use strict";

const POLL_MS = 2000;

const state = {
  login: null, // GET /v1/login: {cluster, secondFactor}
  me: null, // GET /v1/whoami
  timer: null, // the current view's poll
  view: 0, // bumped on every navigation: late answers of a left view are dropped
  expired: false,
};

// el makes an element: attrs are properties ("text" sets textContent,
// "on..." listeners), children are nodes or strings.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// present drops the null, false and undefined that conditional parts give.
function present(...xs) {
  return xs.flat(Infinity).filter((x) => x !== undefined && x !== null && x !== false);
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api calls the cluster API with the session cookie; unsafe methods carry
// the session's CSRF token. A 401 while logged in means the session ended.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("grv_csrf");
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    if (resp.ok) throw new APIError(resp.status, "the answer was not JSON");
  }
  if (!resp.ok) {
    const msg = (data && data.error) || resp.status + " " + resp.statusText;
    if (resp.status === 401 && state.me && path !== "/v1/sessions") sessionExpired();
    throw new APIError(resp.status, msg);
  }
  return data;
}

function sessionExpired() {
  state.me = null;
  state.expired = true;
  location.hash = "#/login";
  route();
}

function can(perm) {
  return !!(state.me && state.me.permissions && state.me.permissions[perm]);
}

// fmtTime is a time of the API's in the browser's zone, as
// 2006-01-02 15:04:05; the zero time is no time.
function fmtTime(t) {
  if (!t || t.startsWith("0001-")) return "";
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
    p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

function fmtDuration(ms) {
  if (ms < 0 || !isFinite(ms)) return "";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
}

function span(start, finish) {
  if (!start || start.startsWith("0001-")) return "";
  const end = finish && !finish.startsWith("0001-") ? new Date(finish) : new Date();
  return fmtDuration(end - new Date(start)) + (finish && !finish.startsWith("0001-") ? "" : " so far");
}

function badge(s) {
  return el("span", { class: "badge " + (s || ""), text: (s || "unknown").replace("_", " ") });
}

function errorBox(err) {
  return el("p", { class: "error", role: "alert", text: err.message || String(err) });
}

function setMain(...nodes) {
  const main = document.getElementById("main");
  main.className = "";
  main.replaceChildren(...present(nodes));
  return main;
}

function setTitle(page) {
  const cluster = state.login ? state.login.cluster : "";
  document.title = page + (cluster ? " · " + cluster : "") + " · Gravity";
}

// poll runs fn now and every POLL_MS while the view is the same one; fn
// is told whether its answer is still wanted. The function returned runs
// fn again at once (after a click), in place of the pending run.
function poll(fn) {
  const view = state.view;
  let gen = 0;
  const live = (g) => view === state.view && g === gen;
  const run = async (g) => {
    if (!live(g)) return;
    try {
      await fn(() => live(g));
    } catch (e) {
      if (live(g) && !(e instanceof APIError && e.status === 401)) console.error(e);
    }
    if (live(g)) state.timer = setTimeout(() => run(g), POLL_MS);
  };
  run(gen);
  return () => {
    clearTimeout(state.timer);
    gen++;
    run(gen);
  };
}

// ---- login

function loginView() {
  setTitle("Log in");
  const sf = state.login && state.login.secondFactor;
  const otpNeeded = sf && sf !== "off";
  const msg = el("div", {});
  if (state.expired) msg.append(el("p", { class: "notice", id: "expired", text: "Your session has expired: log in again" }));
  const user = el("input", { id: "user", name: "user", autocomplete: "username", required: true, autofocus: true });
  const password = el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const otp = otpNeeded
    ? el("input", { id: "otp", name: "otp", inputmode: "numeric", pattern: "[0-9]{6}", autocomplete: "one-time-code", required: true })
    : null;
  const button = el("button", { type: "submit", class: "primary", id: "login", text: "Log in" });
  const form = el("form", { id: "login-form", method: "post", action: "#/login" },
    el("label", { for: "user", text: "User name" }), user,
    el("label", { for: "password", text: "Password" }), password,
    otpNeeded && el("label", { for: "otp", text: "One-time code" }), otp,
    button);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    msg.replaceChildren();
    try {
      await api("POST", "/v1/sessions", { user: user.value, password: password.value, otp: otp ? otp.value : undefined });
      state.expired = false;
      state.me = await api("GET", "/v1/whoami");
      location.hash = "#/";
    } catch (e) {
      msg.replaceChildren(errorBox(e));
      button.disabled = false;
    }
  });
  const main = setMain(el("div", { class: "card" },
    el("p", { class: "cluster", text: "Cluster " + (state.login ? state.login.cluster : "") }),
    el("h1", { text: "Log in" }), msg, form));
  main.className = "narrow";
  user.focus();
}

// ---- dashboard

function stat(label, value, id) {
  return el("div", { class: "card stat" }, el("div", { class: "label", text: label }),
    el("div", { class: "value", id }, value));
}

function dashboardView() {
  setTitle("Dashboard");
  if (!can("read cluster")) {
    setMain(el("div", { class: "card" }, el("h1", { text: "Dashboard" }),
      el("p", { text: "Your roles do not let you see the cluster's state." })));
    return;
  }
  const body = el("div", {}, el("p", { class: "muted", text: "Loading…" }));
  setMain(el("h1", { text: "Dashboard" }), body);
  poll(async (current) => {
    const c = await api("GET", "/v1/cluster");
    let op = null;
    if (c.operation && can("read operation")) op = await api("GET", "/v1/operations/" + encodeURIComponent(c.operation.id));
    if (!current()) return;
    const nodes = c.nodes.map((n) => n.address || n.name);
    body.replaceChildren(...present(
      el("div", { class: "grid" },
        stat("Cluster", c.name, "dash-cluster"),
        stat("Application", c.app + " " + c.appVersion, "dash-app"),
        stat("Status", badge(c.state), "dash-state"),
        stat("Health", badge(c.healthy ? "healthy" : "degraded"), "dash-health"),
        stat("Nodes", nodes.join(", "), "dash-nodes")),
      c.nodes.some((n) => n.problems && n.problems.length)
        ? el("div", { class: "card" }, el("h2", { text: "Problems" }),
          el("ul", {}, c.nodes.flatMap((n) => (n.problems || []).map((p) => el("li", { text: (n.address || n.name) + ": " + p })))))
        : null,
      operationCard(c.operation, op, true)));
  });
}

// operationCard shows an operation's progress, its plan and its hooks'
// logs (full: the latest operation on the dashboard).
function operationCard(brief, op, latest) {
  if (!brief) return el("div", { class: "card" }, el("h2", { text: "Operations" }), el("p", { class: "muted", text: "None yet." }));
  const card = el("div", { class: "card", id: "operation-" + brief.id },
    el("h2", { text: (latest ? (brief.state === "in_progress" ? "Current operation: " : "Last operation: ") : "") + (brief.description || brief.type) }),
    el("div", { class: "row" }, badge(brief.state),
      el("span", { class: "muted", text: brief.type + " · " + brief.id + " · started " + fmtTime(brief.created) }),
      el("span", { text: brief.phasesDone + " of " + brief.phases + " phases" })),
    el("progress", { max: Math.max(brief.phases, 1), value: brief.phasesDone }));
  if (op) {
    card.append(...present(planTable(op.plan), hookLogs(op.hookLogs),
      op.hookLogsError && el("p", { class: "error", text: "Hook logs: " + op.hookLogsError })));
  }
  return card;
}

function planTable(plan) {
  const rows = [];
  const walk = (phases, depth) => {
    for (const ph of phases || []) {
      const st = phaseState(ph);
      const [start, finish] = phaseSpan(ph);
      rows.push(el("tr", {},
        el("td", { class: "phase-" + Math.min(depth, 3) }, el("span", { class: "mono", text: ph.id }), el("br"),
          el("span", { class: "muted", text: ph.description })),
        el("td", {}, badge(st)),
        el("td", { text: fmtTime(start) }),
        el("td", { text: fmtTime(finish) }),
        el("td", { text: span(start, finish) }),
        el("td", { class: "error", text: ph.error || "" })));
      walk(ph.phases, depth + 1);
    }
  };
  walk(plan.phases, 0);
  return el("table", { class: "plan" },
    el("thead", {}, el("tr", {}, ["Phase", "State", "Started", "Finished", "Took", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows));
}

// phaseState and phaseSpan are a group's, from its leaves, as package plan
// derives them.
function phaseState(ph) {
  if (!ph.phases || !ph.phases.length) return ph.state || "unstarted";
  const states = ph.phases.map(phaseState);
  const n = (s) => states.filter((x) => x === s).length;
  if (n("failed")) return "failed";
  if (n("completed") === states.length) return "completed";
  if (n("rolled_back") && n("unstarted") + n("rolled_back") === states.length) return "rolled_back";
  if (n("unstarted") === states.length) return "unstarted";
  return "in_progress";
}

function phaseSpan(ph) {
  if (!ph.phases || !ph.phases.length) return [ph.started || "", ph.finished || ""];
  let start = "", finish = "";
  for (const c of ph.phases) {
    const [s, f] = phaseSpan(c);
    if (s && (!start || s < start)) start = s;
    if (f && f > finish) finish = f;
  }
  if (phaseState(ph) !== "completed") finish = "";
  return [start, finish];
}

function hookLogs(logs) {
  if (!logs || !logs.length) return null;
  return el("div", {}, el("h2", { text: "Hook logs" }),
    logs.map((l) => el("details", { open: true }, el("summary", { text: l.hook + " (" + l.namespace + "/" + l.pod + ")" }),
      el("pre", { text: l.output || "(no output)" }))));
}

// ---- nodes

function nodesView() {
  setTitle("Nodes");
  const table = el("tbody", {});
  const join = el("div", {});
  setMain(el("h1", { text: "Nodes" }),
    el("div", { class: "card" }, el("table", { id: "nodes" },
      el("thead", {}, el("tr", {}, ["Name", "Address", "Profile", "Master", "Health"].map((h) => el("th", { text: h })))),
      table)),
    join);
  poll(async (current) => {
    const c = await api("GET", "/v1/cluster");
    if (!current()) return;
    table.replaceChildren(...c.nodes.map((n) => el("tr", {},
      el("td", { text: n.hostname || n.name }),
      el("td", { class: "mono", text: n.address }),
      el("td", { text: n.profile }),
      el("td", { text: n.master ? "master" : "worker" }),
      el("td", {}, badge(n.status), (n.problems || []).map((p) => el("div", { class: "error", text: p }))))));
    if (!c.profiles.some((p) => p.joinCommand)) {
      join.replaceChildren();
      return;
    }
    // The commands change only with the token: keep what a user selected.
    const key = c.profiles.map((p) => p.joinCommand).join("\n");
    if (join.dataset.key === key) return;
    join.dataset.key = key;
    join.replaceChildren(el("div", { class: "card", id: "join" },
      el("h2", { text: "Add a node" }),
      el("p", { text: "Copy the gravity binary of a master (/usr/local/bin/gravity) to the new host and run there, for the profile it should have:" }),
      c.profiles.map((p) => [
        el("div", { class: "muted", text: p.name + (p.description ? ": " + p.description : "") }),
        el("code", { class: "command", text: p.joinCommand })]),
      c.joinTokenExpires ? el("p", { class: "muted", text: "The join token expires " + fmtTime(c.joinTokenExpires) + "." }) : null));
  });
}

// ---- operations

function operationsView() {
  setTitle("Operations");
  const list = el("div", {}, el("p", { class: "muted", text: "Loading…" }));
  const open = new Set(); // operations whose plan is shown
  let first = true;
  setMain(el("h1", { text: "Operations" }), list);
  const kick = poll(async (current) => {
    const ops = await api("GET", "/v1/operations");
    if (first && ops.length) open.add(ops[0].id); // the newest, at first
    first = false;
    const details = {};
    for (const o of ops) {
      if ((open.has(o.id) || o.state === "in_progress") && can("read operation")) {
        details[o.id] = await api("GET", "/v1/operations/" + encodeURIComponent(o.id));
      }
    }
    if (!current()) return;
    if (!ops.length) {
      list.replaceChildren(el("div", { class: "card" }, el("p", { class: "muted", text: "No operations yet." })));
      return;
    }
    list.replaceChildren(...ops.map((o) => {
      const card = operationCard(o, details[o.id], false);
      if (o.finished) card.append(el("p", { class: "muted", text: "Finished " + fmtTime(o.finished) + ", took " + span(o.created, o.finished) + "." }));
      if (can("read operation") && o.state !== "in_progress") {
        card.append(el("button", {
          type: "button", class: "secondary", text: open.has(o.id) ? "Hide plan" : "Show plan",
          onclick: () => {
            if (open.has(o.id)) open.delete(o.id);
            else open.add(o.id);
            kick();
          },
        }));
      }
      return card;
    }));
  });
}

// ---- users

function usersView() {
  setTitle("Users");
  const table = el("tbody", {});
  const result = el("div", { id: "invite-result" });
  const parts = [el("h1", { text: "Users" })];
  if (can("create user")) {
    const name = el("input", { id: "invite-name", name: "name", required: true, autocomplete: "off" });
    const roles = el("input", { id: "invite-roles", name: "roles", value: "@teleadmin", required: true, autocomplete: "off" });
    const known = el("datalist", { id: "role-names" });
    roles.setAttribute("list", "role-names");
    const button = el("button", { type: "submit", id: "invite", text: "Invite" });
    const form = el("form", { id: "invite-form", action: "#/users" },
      el("h2", { text: "Invite a user" }),
      el("label", { for: "invite-name", text: "User name" }), name,
      el("label", { for: "invite-roles", text: "Roles (comma separated)" }), roles, known,
      el("div", { class: "row" }, button));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        const list = roles.value.split(",").map((r) => r.trim()).filter(Boolean);
        const inv = await api("POST", "/v1/users", { name: name.value.trim(), roles: list });
        result.replaceChildren(linkNotice("Signup token has been created and is valid for " + fmtDuration(inv.ttl / 1e6) +
          ". Share this URL with the user:", inv.url, "invite-url"));
        name.value = "";
        refresh();
      } catch (e) {
        result.replaceChildren(errorBox(e));
      }
      button.disabled = false;
    });
    if (can("list role")) {
      api("GET", "/v1/resources/roles").then((rs) => {
        known.replaceChildren(...["@teleadmin", ...rs.map((r) => r.metadata.name)].map((n) => el("option", { value: n })));
      }).catch(() => {});
    }
    parts.push(el("div", { class: "card" }, form, result));
  }
  parts.push(el("div", { class: "card" }, el("table", { id: "users" },
    el("thead", {}, el("tr", {}, ["Name", "Type", "Roles", ""].map((h) => el("th", { text: h })))), table)));
  setMain(...parts);

  async function refresh() {
    let users;
    try {
      users = await api("GET", "/v1/users");
    } catch (e) {
      table.replaceChildren(el("tr", {}, el("td", { colspan: 4 }, errorBox(e))));
      return;
    }
    table.replaceChildren(...users.map((u) => el("tr", { "data-user": u.name },
      el("td", { text: u.name }), el("td", { text: u.type }), el("td", { text: (u.roles || []).join(", ") }),
      el("td", { class: "actions" },
        can("update user") && u.type !== "agent" ? el("button", {
          type: "button", class: "secondary", text: "Reset password",
          onclick: async () => {
            try {
              const r = await api("POST", "/v1/users/" + encodeURIComponent(u.name) + "/reset", {});
              result.replaceChildren(linkNotice("Password reset token has been created and is valid for " + fmtDuration(r.ttl / 1e6) +
                ". Share this URL with " + u.name + ":", r.url, "reset-url"));
            } catch (e) {
              result.replaceChildren(errorBox(e));
            }
          },
        }) : null,
        can("delete user") && u.name !== (state.me && state.me.user) ? deleteButton(u.name) : null))));
  }
  function deleteButton(name) {
    const b = el("button", { type: "button", class: "danger", text: "Delete" });
    b.addEventListener("click", async () => {
      if (b.dataset.armed !== "yes") {
        b.dataset.armed = "yes";
        b.textContent = "Delete " + name + "?";
        return;
      }
      try {
        await api("DELETE", "/v1/users/" + encodeURIComponent(name));
        result.replaceChildren(el("p", { class: "ok", text: "User " + name + " has been deleted." }));
      } catch (e) {
        result.replaceChildren(errorBox(e));
      }
      refresh();
    });
    return b;
  }
  refresh();
}

function linkNotice(text, url, id) {
  return el("div", { class: "notice" }, el("p", { text }), el("code", { class: "command", id, text: url }));
}

// ---- audit

function auditView() {
  setTitle("Audit log");
  const table = el("tbody", {});
  setMain(el("h1", { text: "Audit log" }), el("div", { class: "card" }, el("table", { id: "audit" },
    el("thead", {}, el("tr", {}, ["Time", "Event", "Code", "User", "From", "Message"].map((h) => el("th", { text: h })))), table)));
  poll(async (current) => {
    const events = await api("GET", "/v1/audit");
    if (!current()) return;
    table.replaceChildren(...events.slice().reverse().map((e) => el("tr", {},
      el("td", { text: fmtTime(e.time) }), el("td", { class: "mono", text: e.event }), el("td", { class: "mono", text: e.code }),
      el("td", { text: e.user }), el("td", { class: "mono", text: e.from }), el("td", { text: e.message }))));
  });
}

// ---- certificate

function certDetails(c, id) {
  return el("dl", { id },
    el("dt", { text: "Fingerprint" }), el("dd", { class: "mono", text: c.fingerprint }),
    el("dt", { text: "Subject" }), el("dd", { text: c.subject }),
    el("dt", { text: "Issuer" }), el("dd", { text: c.issuer }),
    el("dt", { text: "Names" }), el("dd", { text: [...(c.dnsNames || []), ...(c.ipAddresses || [])].join(", ") }),
    el("dt", { text: "Valid from" }), el("dd", { text: fmtTime(c.notBefore) }),
    el("dt", { text: "Expires" }), el("dd", { text: fmtTime(c.notAfter) }),
    el("dt", { text: "From" }), el("dd", { text: c.source === "tlskeypair" ? "the tlskeypair resource" : "the cluster CA" }));
}

function certificateView() {
  setTitle("Certificate");
  const served = el("div", { class: "card" }, el("p", { class: "muted", text: "Loading…" }));
  const result = el("div", {});
  const parts = [el("h1", { text: "Certificate" }), served];
  const load = async () => {
    try {
      const c = await api("GET", "/v1/certificate");
      served.replaceChildren(...present(el("h2", { text: "This page's certificate" }), certDetails(c.served, "cert-served"),
        c.tlskeypair && c.served.source !== "tlskeypair"
          ? [el("h2", { text: "The tlskeypair resource's certificate" }),
            el("p", { class: "muted", text: "Served to browsers that name a host it covers." }), certDetails(c.tlskeypair, "cert-keypair")]
          : null,
        c.tlskeypair && can("delete tlskeypair")
          ? el("button", { type: "button", class: "secondary", text: "Go back to the cluster CA's certificate", onclick: async () => {
            try {
              await api("DELETE", "/v1/resources/tlskeypair/keypair");
              result.replaceChildren(el("p", { class: "ok", text: "The tlskeypair resource was removed: within 10 seconds every master serves the cluster CA's certificate." }));
              load();
            } catch (e) {
              result.replaceChildren(errorBox(e));
            }
          } })
          : null));
    } catch (e) {
      served.replaceChildren(errorBox(e));
    }
  };
  if (can("create tlskeypair") && can("update tlskeypair")) {
    const cert = el("textarea", { id: "cert-pem", placeholder: "-----BEGIN CERTIFICATE-----" });
    const key = el("textarea", { id: "key-pem", placeholder: "-----BEGIN PRIVATE KEY-----" });
    const fileInput = (target, id) => el("input", { type: "file", id, accept: ".pem,.crt,.key,.cer", onchange: async (ev) => {
      const f = ev.target.files[0];
      if (f) target.value = await f.text();
    } });
    const button = el("button", { type: "submit", text: "Replace the certificate" });
    const form = el("form", { id: "cert-form", action: "#/certificate" },
      el("h2", { text: "Replace the certificate" }),
      el("p", { class: "muted", text: "A certificate of your own CA, covering every master's address or the auth gateway's public addresses, with its private key (PEM). Every master serves it within 10 seconds." }),
      el("label", { for: "cert-file", text: "Certificate (with its chain)" }), fileInput(cert, "cert-file"), cert,
      el("label", { for: "key-file", text: "Private key" }), fileInput(key, "key-file"), key,
      el("div", { class: "row" }, button));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      button.disabled = true;
      try {
        const r = await api("POST", "/v1/resources", {
          force: true,
          resources: [{ kind: "tlskeypair", version: "v2", metadata: { name: "keypair" }, spec: { cert: cert.value, private_key: key.value } }],
        });
        key.value = "";
        result.replaceChildren(el("p", { class: "ok", text: (r.messages || []).join(" ") }));
        load();
      } catch (e) {
        result.replaceChildren(errorBox(e));
      }
      button.disabled = false;
    });
    parts.push(el("div", { class: "card" }, form));
  }
  parts.push(result);
  setMain(...parts);
  load();
}

// ---- routing

const views = {
  "/": { view: dashboardView, page: "dashboard" },
  "/nodes": { view: nodesView, page: "nodes", needs: "read cluster" },
  "/operations": { view: operationsView, page: "operations", needs: "list operation" },
  "/users": { view: usersView, page: "users", needs: "list user" },
  "/audit": { view: auditView, page: "audit", needs: "list event" },
  "/certificate": { view: certificateView, page: "certificate", needs: "read tlskeypair" },
};

function showChrome() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.hidden = who.hidden = !state.me;
  if (!state.me) return;
  document.getElementById("who-name").textContent = state.me.user;
  for (const a of nav.querySelectorAll("a")) a.hidden = !!(a.dataset.needs && !can(a.dataset.needs));
}

async function route() {
  clearTimeout(state.timer);
  state.view++;
  const path = location.hash.replace(/^#/, "") || "/";
  if (!state.me && path !== "/login") {
    try {
      state.me = await api("GET", "/v1/whoami");
    } catch (e) {
      state.me = null;
      // A CSRF cookie without a session: the session ran out.
      state.expired = state.expired || (e.status === 401 && cookie("grv_csrf") !== "");
      if (location.hash !== "#/login") location.hash = "#/login";
      else route();
      return;
    }
  }
  showChrome();
  if (path === "/login") {
    if (state.me) {
      location.hash = "#/";
      return;
    }
    loginView();
    return;
  }
  const v = views[path];
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", !!v && a.dataset.page === v.page);
  if (!v) {
    setMain(el("div", { class: "card" }, el("h1", { text: "Not found" }), el("p", {}, el("a", { href: "#/", text: "Dashboard" }))));
    return;
  }
  if (v.needs && !can(v.needs)) {
    setMain(el("div", { class: "card" }, el("h1", { text: "Access denied" }),
      el("p", { text: "Your roles do not allow this page (permission “" + v.needs + "”)." })));
    return;
  }
  v.view();
}

async function logout() {
  try {
    await api("DELETE", "/v1/sessions");
  } catch (e) {
    if (!(e instanceof APIError && e.status === 401)) {
      setMain(errorBox(e));
      return;
    }
  }
  state.me = null;
  state.expired = false;
  location.hash = "#/login";
}

async function start() {
  try {
    state.login = await api("GET", "/v1/login");
    document.getElementById("cluster-name").textContent = state.login.cluster;
  } catch (e) {
    setMain(errorBox(e));
  }
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  route();
}

start();
