// The overview table of one ecgreport batch run: sort, filter and page through the rows
// embedded in this page (no network: it must open from a USB stick). Rows are drawn a
// page at a time, so 100,000 records cost one page of DOM, not 100,000 table rows.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("ecg-data").textContent);
  const cols = data.columns;              // [{key, label, type: "text"|"num"}]
  const rows = data.rows;                 // arrays in column order, then href
  const HREF = cols.length;
  const PAGE = 100;
  const el = (id) => document.getElementById(id);
  const search = el("q"), status = el("status"), body = el("rows"), info = el("info");
  let order = rows.map((_, i) => i), shown = order, page = 0, sortKey = -1, sortDir = 1;
  let haystack = null;                    // lower-case text of each row, built on first filter

  function text(row) {
    return row.slice(0, HREF).map((v) => (v === null ? "" : String(v))).join(" \u0001 ").toLowerCase();
  }

  function apply() {
    const q = search.value.trim().toLowerCase();
    const st = status.value;
    if (q && haystack === null) haystack = rows.map(text);
    const terms = q ? q.split(/\s+/) : [];
    shown = order.filter((i) => (!st || rows[i][1] === st) &&
      terms.every((t) => haystack[i].includes(t)));
    page = Math.min(page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    draw();
    saveState();
  }

  function sortBy(k) {
    sortDir = sortKey === k ? -sortDir : 1;
    sortKey = k;
    const num = cols[k].type === "num";
    order = rows.map((_, i) => i);
    order.sort((a, b) => {
      const x = rows[a][k], y = rows[b][k];
      if (x === null || x === "") return (y === null || y === "") ? a - b : 1;  // empty last
      if (y === null || y === "") return -1;
      const c = num ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
      return c ? c * sortDir : a - b;
    });
    document.querySelectorAll("th[data-col]").forEach((th) => {
      const i = Number(th.dataset.col);
      th.setAttribute("aria-sort", i === k ? (sortDir > 0 ? "ascending" : "descending") : "none");
    });
    page = 0;
    apply();
  }

  function draw() {
    const start = page * PAGE, slice = shown.slice(start, start + PAGE);
    const frag = document.createDocumentFragment();
    for (const i of slice) {
      const row = rows[i], tr = document.createElement("tr");
      if (row[1] !== "ok") tr.className = "bad";
      cols.forEach((c, k) => {
        const td = document.createElement("td");
        const v = row[k] === null ? "" : row[k];
        if (k === 0 && row[HREF]) {
          const a = document.createElement("a");
          a.href = row[HREF];
          a.textContent = v;
          td.appendChild(a);
        } else {
          td.textContent = v;
          if (k === 0) td.title = "No page yet: ecgreport overview OUT --record " + v;
        }
        if (c.type === "num") td.className = "num";
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    info.textContent = shown.length
      ? `records ${start + 1}-${start + slice.length} of ${shown.length}` +
        (shown.length !== rows.length ? ` (filtered from ${rows.length})` : "") +
        ` · page ${page + 1} of ${pages}`
      : `no records match (of ${rows.length})`;
    el("prev").disabled = el("first").disabled = page === 0;
    el("next").disabled = el("last").disabled = page >= pages - 1;
  }

  function go(p) {
    page = Math.max(0, Math.min(p, Math.ceil(shown.length / PAGE) - 1));
    draw();
    saveState();
  }

  // The filter, sort and page live in the address (#q=...&status=...), so "back" from a
  // record page returns to the same view.
  function saveState() {
    const s = new URLSearchParams();
    if (search.value) s.set("q", search.value);
    if (status.value) s.set("status", status.value);
    if (sortKey >= 0) s.set("sort", (sortDir < 0 ? "-" : "") + cols[sortKey].key);
    if (page) s.set("page", String(page + 1));
    history.replaceState(null, "", s.toString() ? "#" + s.toString() : location.pathname);
  }

  function loadState() {
    const s = new URLSearchParams(location.hash.slice(1));
    search.value = s.get("q") || "";
    status.value = s.get("status") || "";
    const key = s.get("sort");
    if (key) {
      const k = cols.findIndex((c) => c.key === key.replace(/^-/, ""));
      if (k >= 0) {
        sortKey = key.startsWith("-") ? k : -1;  // sortBy flips the direction on a repeat
        sortDir = 1;
        sortBy(k);
      }
    }
    page = Math.max(0, Number(s.get("page") || 1) - 1);
    apply();
  }

  document.querySelectorAll("th[data-col] button").forEach((b) =>
    b.addEventListener("click", () => sortBy(Number(b.parentElement.dataset.col))));
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { page = 0; apply(); }, rows.length > 20000 ? 200 : 30);
  });
  status.addEventListener("change", () => { page = 0; apply(); });
  el("first").addEventListener("click", () => go(0));
  el("prev").addEventListener("click", () => go(page - 1));
  el("next").addEventListener("click", () => go(page + 1));
  el("last").addEventListener("click", () => go(Infinity));
  // Keyboard: "/" jumps to the filter; arrow keys move between the rows' links;
  // PageDown/PageUp (outside the filter box) turn pages.
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement !== search) {
      e.preventDefault();
      search.focus();
      return;
    }
    const links = Array.from(body.querySelectorAll("a"));
    const at = links.indexOf(document.activeElement);
    if ((e.key === "ArrowDown" || e.key === "ArrowUp") && (at >= 0 || e.key === "ArrowDown")) {
      const next = at + (e.key === "ArrowDown" ? 1 : -1);
      if (links[Math.max(0, next)]) {
        e.preventDefault();
        links[Math.max(0, next)].focus();
      }
    } else if (document.activeElement !== search && (e.key === "PageDown" || e.key === "PageUp")) {
      e.preventDefault();
      go(page + (e.key === "PageDown" ? 1 : -1));
    }
  });
  loadState();
})();
