// The console's little script: signs in (the token stays in this tab's sessionStorage),
// fetches the hub's HTML views with it, shows times in the browser's zone, and refreshes the
// live views as the account's events arrive on its stream.
"use strict";

const session = window.sessionStorage;
const $ = (id) => document.getElementById(id);
let follow = null; // the stream's AbortController
let refreshTimer = null;

function signedIn() {
  return session.getItem("sb-token") && session.getItem("sb-account");
}

function base() {
  return "/console/a/" + encodeURIComponent(session.getItem("sb-account"));
}

function headers() {
  return { Authorization: "Bearer " + session.getItem("sb-token") };
}

// The API's own message of a refused request.
async function messageOf(response) {
  try {
    const body = await response.json();
    if (body && body["@error"]) return body["@error"]["@message"];
  } catch (_) { /* not JSON */ }
  return response.status + " " + response.statusText;
}

function showSignIn(message) {
  stopFollowing();
  $("nav").hidden = true;
  $("view").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("token").focus();
}

function signOut() {
  session.clear();
  $("token").value = "";
  $("account").value = "";
  location.hash = "";
  showSignIn("");
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  const wanted = $("account").value.trim();
  $("sign-in-error").textContent = "";
  let who;
  try {
    const r = await fetch("/console/whoami", { headers: { Authorization: "Bearer " + token } });
    if (!r.ok) {
      $("sign-in-error").textContent = "Not signed in: " + (await messageOf(r));
      return;
    }
    who = await r.json();
  } catch (e) {
    $("sign-in-error").textContent = "The hub did not answer: " + e;
    return;
  }
  let account;
  let label;
  if (who.admin) {
    if (!wanted) {
      $("sign-in-error").textContent = "With the admin token, give the account id to look at.";
      $("account").focus();
      return;
    }
    account = wanted;
    label = "admin, account " + wanted;
  } else {
    if (wanted && wanted !== String(who.account)) {
      $("sign-in-error").textContent = "This token belongs to account " + who.account + ", not " + wanted + ".";
      return;
    }
    account = String(who.account);
    label = "account " + who.account + (who.extension_id != null ? ", extension " + who.extension_id : "");
  }
  session.setItem("sb-token", token);
  session.setItem("sb-account", account);
  session.setItem("sb-who", label);
  $("token").value = "";
  start();
}

function start() {
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").textContent = "Signed in: " + session.getItem("sb-who");
  startFollowing();
  if (!location.hash || location.hash === "#") location.hash = "#/live";
  else route();
}

// Times in the browser's zone; UTC stays in the title.
function localizeTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.textContent = d.toLocaleString();
  }
}

function current() {
  const hash = location.hash.replace(/^#/, "") || "/live";
  const [path, query] = hash.split("?");
  return { path, query: query || "" };
}

async function load(path, query, quiet) {
  if (!quiet) $("notice").textContent = "";
  const url = base() + path + (query ? "?" + query : "");
  let r;
  try {
    r = await fetch(url, { headers: headers() });
  } catch (e) {
    if (!quiet) showError("The hub did not answer: " + e);
    return;
  }
  if (r.status === 401) {
    session.clear();
    showSignIn("Signed out: " + (await messageOf(r)));
    return;
  }
  // The page may have moved on while this answer came (a view fetched as the console opened,
  // or refreshed, answering after a click on another): an answer for a page no longer shown
  // is dropped, never painted over the one that is.
  const stillShown = () => {
    const now = current();
    return now.path === path && now.query === query;
  };
  if (!r.ok) {
    const message = await messageOf(r);
    if (stillShown()) showError(r.status === 404 ? "Not found: " + message : message);
    return;
  }
  const html = await r.text();
  if (!stillShown()) return;
  const view = $("view");
  // A view fetched again keeps the keyboard where it was (the same link or control).
  const focused = document.activeElement;
  let again = null;
  if (quiet && focused && view.contains(focused)) {
    if (focused.id) again = "#" + CSS.escape(focused.id);
    else if (focused.getAttribute("href")) again = 'a[href="' + CSS.escape(focused.getAttribute("href")) + '"]';
    else if (focused.tagName === "H2") again = "h2";
  }
  view.innerHTML = html;
  localizeTimes(view);
  if (again) {
    const same = view.querySelector(again);
    if (same) {
      if (same.tagName === "H2") same.tabIndex = -1;
      same.focus();
    }
  }
  if (!quiet) {
    const heading = view.querySelector("h2");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
}

function showError(message) {
  const p = document.createElement("p");
  p.className = "error";
  p.setAttribute("role", "alert");
  p.dataset.testid = "error";
  p.textContent = message;
  const back = document.createElement("a");
  back.href = "#/live";
  back.textContent = "Back to the live calls";
  $("view").replaceChildren(p, back);
}

function route(quiet) {
  if (!signedIn()) return showSignIn("");
  const { path, query } = current();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (path === "/live" || path === "/history" || path === "/agents" || path === "/deliveries"
      || path === "/config"
      || path.startsWith("/calls/") || path.startsWith("/deliveries/")) {
    return load(path, query, quiet).then(scheduleRefresh);
  }
  showError("Not found: there is no page " + path);
}

// A view with deliveries still to be made fetches itself again until they settle.
let pollTimer = null;
function scheduleRefresh() {
  clearTimeout(pollTimer);
  const marker = document.querySelector("#view [data-refresh]");
  if (!marker) return;
  const shown = location.hash;
  pollTimer = setTimeout(() => {
    if (location.hash === shown) route(true);
  }, Number(marker.dataset.refresh) || 2000);
}

// A form's fields as the API's JSON: `a.b` and `a[0]` names nest, checkboxes are booleans, multiple
// selects are arrays, `data-type="number"` is a number; empty fields are left out.
function formJson(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    let value;
    if (el.type === "checkbox") value = el.checked;
    else if (el.multiple) value = Array.from(el.selectedOptions, (o) => o.value);
    else if (el.value === "") continue;
    else if (el.dataset.type === "number") value = Number(el.value);
    // Unix seconds of a time picked in the browser's zone.
    else if (el.dataset.type === "unix") value = Math.floor(new Date(el.value).getTime() / 1000);
    else value = el.value;
    // `a.b` is an object's field, `a[0]` an array's item.
    const keys = el.name.match(/[^.[\]]+/g);
    let at = body;
    keys.slice(0, -1).forEach((k, i) => {
      at = at[k] = at[k] || (/^\d+$/.test(keys[i + 1]) ? [] : {});
    });
    at[keys[keys.length - 1]] = value;
  }
  return body;
}

// The API's message next to the field it names (`@path`), else for the whole form.
function showFieldError(scope, path, message) {
  for (const e of document.querySelectorAll("[data-error-for]")) e.textContent = "";
  const spot = (path && scope.querySelector('[data-error-for="' + CSS.escape(path) + '"]'))
    || scope.querySelector('[data-error-for=""]')
    || document.querySelector('[data-testid=config-error]');
  if (!spot) return showError(message);
  spot.textContent = message;
  const input = path && scope.querySelector('[name="' + CSS.escape(path) + '"]');
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

async function callApi(method, path, body, scope) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  $("notice").textContent = "";
  const r = await fetch(base() + "/api/" + path, init);
  if (r.ok) {
    const answer = await r.json().catch(() => ({}));
    $("notice").textContent = answer.replayed !== undefined
      ? "Queued to be sent again: " + answer.replayed + " deliveries."
      : answer.status === "pending"
        ? "Delivery " + answer.id + " will be sent again."
        : "Saved.";
    return route(true);
  }
  let path_ = "";
  let message = r.status + " " + r.statusText;
  try {
    const e = (await r.json())["@error"];
    message = e["@message"];
    path_ = e["@path"] || "";
  } catch (_) { /* not JSON */ }
  showFieldError(scope, path_, message);
}

// Sent again through the API's own retry, as the viewer.
function retry(button) {
  button.disabled = true;
  const path = "callbacks/" + encodeURIComponent(button.dataset.callback) + "/deliveries/"
    + encodeURIComponent(button.dataset.delivery) + "/retry";
  return callApi("POST", path, undefined, button.closest("tr") || $("view"));
}

// The views that show what is happening now fetch themselves again as events arrive.
function followsEvents(path) {
  return path === "/live" || path === "/agents" || path.startsWith("/calls/");
}

function refreshSoon() {
  if (!followsEvents(current().path)) return;
  clearTimeout(refreshTimer);
  // Only if the page still shows such a view (not one navigated to meanwhile).
  refreshTimer = setTimeout(() => {
    if (followsEvents(current().path)) route(true);
  }, 150);
}

function stopFollowing() {
  if (follow) follow.abort();
  follow = null;
}

async function startFollowing() {
  stopFollowing();
  const controller = new AbortController();
  follow = controller;
  while (follow === controller) {
    try {
      const r = await fetch(base() + "/stream", { headers: headers(), signal: controller.signal });
      if (!r.ok || !r.body) throw new Error(String(r.status));
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^data:/m.test(message)) refreshSoon();
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// Datetime inputs are in the browser's zone; the API takes UTC.
function formQuery(form) {
  const params = new URLSearchParams();
  for (const el of form.elements) {
    if (!el.name || !el.value) continue;
    let value = el.value;
    if (el.type === "datetime-local") value = new Date(value).toISOString();
    params.set(el.name, value);
  }
  return params;
}

async function exportCsv(form) {
  const r = await fetch(base() + "/history.csv?" + formQuery(form), { headers: headers() });
  if (!r.ok) return showError(await messageOf(r));
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "calls.csv";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => route(false));
  $("view").addEventListener("submit", (event) => {
    if (event.target.classList.contains("api")) {
      event.preventDefault();
      const form = event.target;
      return callApi(form.dataset.method, form.dataset.path, formJson(form), form);
    }
    if (event.target.id === "filters") {
      event.preventDefault();
      location.hash = "#/history?" + formQuery(event.target);
    } else if (event.target.id === "delivery-filter") {
      event.preventDefault();
      location.hash = "#" + current().path + "?" + formQuery(event.target);
    }
  });
  $("view").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "retry") return retry(button);
    if (button.dataset.action === "api-delete") {
      return callApi("DELETE", button.dataset.path, undefined, button.closest(".item") || $("view"));
    }
    const form = $("filters");
    if (button.dataset.action === "export") exportCsv(form);
    if (button.dataset.action === "more") {
      const params = formQuery(form);
      params.set("cursor", button.dataset.cursor);
      location.hash = "#/history?" + params;
    }
  });
  if (signedIn()) start();
  else showSignIn("");
});
