// Progressive enhancement only: every page works without this file.
// 1. Live values: a container with data-live="/events" receives server-sent events whose data is
//    {key: text}; each text goes into the element with that data-key.
// 2. Forms marked data-background (the virtual phone's buttons) are posted without leaving the
//    page; the reply is shown in the section's .result line.
"use strict";

function liveUpdates() {
  const root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.live);
  source.onmessage = (event) => {
    let view;
    try { view = JSON.parse(event.data); } catch { return; }
    for (const [key, text] of Object.entries(view)) {
      for (const el of root.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) {
        if (el.textContent !== text) el.textContent = text;
      }
    }
    root.dataset.updated = String(Date.now());
  };
}

function backgroundForms() {
  for (const form of document.querySelectorAll("form[data-background]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = form.closest("section")?.querySelector(".result");
      try {
        const reply = await fetch(form.action, {
          method: "POST", body: new URLSearchParams(new FormData(form)),
          headers: { Accept: "application/json" }, credentials: "same-origin",
        });
        const body = await reply.json();
        if (result) result.textContent = body.message;
      } catch {
        form.submit();  // fall back to the plain form post
      }
    });
  }
}

liveUpdates();
backgroundForms();

// 3. Dial plan tester: re-test on every keystroke (the form's Test button does the same).
function dialPlanTester() {
  const form = document.querySelector("form[data-tester]");
  const out = document.getElementById("dialplan-result");
  if (!form || !out) return;
  let pending = 0;
  const cell = (row, text) => { const td = row.insertCell(); td.textContent = text || ""; };
  const update = async () => {
    const ticket = ++pending;
    const query = new URLSearchParams(new FormData(form));
    let data;
    try { data = await (await fetch(`${form.dataset.tester}?${query}`)).json(); } catch { return; }
    if (ticket !== pending) return;  // an older answer arriving late
    out.replaceChildren();
    if (data.error) {
      const p = out.appendChild(document.createElement("p"));
      p.className = "error"; p.id = "plan-error"; p.textContent = data.error;
      return;
    }
    const table = out.appendChild(document.createElement("table"));
    const head = table.insertRow();
    for (const h of ["Dialled", "The adapter would", "Rule"]) {
      head.appendChild(document.createElement("th")).textContent = h;
    }
    for (const s of data.steps) {
      const row = table.insertRow(); cell(row, s.dialled); cell(row, s.says); cell(row, s.rule);
    }
    if (data.if_timer_expires) {
      const row = table.insertRow(); const e = data.if_timer_expires;
      cell(row, "(timer expires)"); cell(row, e.says); cell(row, e.rule);
    }
  };
  form.addEventListener("input", update);
  // Another line: load the page again with that line's saved plan.
  const line = form.querySelector("select[name=line]");
  if (line) line.addEventListener("change", () => { window.location.search = `?line=${line.value}`; });
}

dialPlanTester();

// 4. A section marked data-poll="URL" data-polling re-reads URL (JSON) every second while it
//    says data-polling, writing each value into its data-key element (the firmware update's
//    progress); it stops when the state is final.
function pollSections() {
  for (const root of document.querySelectorAll("[data-poll][data-polling]")) {
    const tick = async () => {
      let data;
      try { data = await (await fetch(root.dataset.poll, { credentials: "same-origin" })).json(); }
      catch { setTimeout(tick, 2000); return; }
      for (const [key, value] of Object.entries(data)) {
        const text = Array.isArray(value) ? value.join("\n") : value === null ? "-" : String(value);
        for (const el of root.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) {
          if (el.textContent !== text) el.textContent = text;
        }
      }
      if (data.state === "receiving" || data.state === "installing") setTimeout(tick, 1000);
      else { root.removeAttribute("data-polling"); root.querySelector("button")?.removeAttribute("disabled"); }
    };
    tick();
  }
}

pollSections();
