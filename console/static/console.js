// The console's only script: the live board (Server-Sent Events), countdowns, and the
// progress of a list import. No library, no inline script (the Content-Security-Policy
// forbids it).
"use strict";

function secondsText(s, lang) {
  if (s <= 0) return lang === "zh" ? "到期" : "due";
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  if (lang === "zh") return m ? `${m}分${r}秒后` : `${r}秒后`;
  return m ? `in ${m} min ${r} s` : `in ${r} s`;
}

function tickCountdowns() {
  const lang = document.body.dataset.lang;
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".countdown[data-at]")) {
    el.textContent = secondsText(Number(el.dataset.at) - now, lang);
  }
}

function replaceSection(id, html) {
  const section = document.getElementById(id);
  if (!section) return;
  // never under the officer's fingers: a section being typed in waits until it loses focus
  if (section.contains(document.activeElement) && document.activeElement !== document.body) {
    section.dataset.pending = html;
    return;
  }
  section.innerHTML = html;
  delete section.dataset.pending;
}

function startLive(root) {
  const stale = document.getElementById("stale");
  const source = new EventSource(root.dataset.live);
  source.addEventListener("board", (e) => {
    const message = JSON.parse(e.data);
    for (const [id, html] of Object.entries(message.sections)) replaceSection(id, html);
    root.dataset.version = message.version;
    tickCountdowns();
    if (stale) stale.classList.add("hidden");
  });
  source.addEventListener("expired", () => {
    source.close();
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
  });
  source.onerror = () => { if (stale) stale.classList.remove("hidden"); };
  document.addEventListener("focusout", () => {
    setTimeout(() => {
      for (const section of root.querySelectorAll(".live[data-pending]")) {
        if (!section.contains(document.activeElement)) replaceSection(section.id, section.dataset.pending);
      }
    }, 0);
  });
}

function watchImport(box) {
  const bar = box.querySelector("progress");
  const said = box.querySelector(".said");
  const source = new EventSource(box.dataset.progress);
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    bar.max = p.total || 1;
    bar.value = p.done;
    said.textContent = p.text;
    if (p.finished) source.close();
  });
}

function confirmForms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.querySelector("[data-live]");
  if (root) startLive(root);
  for (const box of document.querySelectorAll("[data-progress]")) watchImport(box);
  confirmForms();
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
});
