// The review server's page (facetag review --serve): the archive's faces by section, named in place.
// It reads and writes only through the server's JSON API (/api/...); every name is set as text, never as
// HTML. Sections are built as they scroll into view and faces a page at a time, so 100,000 faces open at
// once; after an action only the sections that changed are rebuilt.
(function () {
  "use strict";
  const FACES_PER_PAGE = 60, SECTIONS_PER_BATCH = 12, DOUBT = 0.05;
  const F = { ID: 0, PHOTO: 1, L: 2, T: 3, R: 4, B: 5, DIST: 6 };
  const $ = (id) => document.getElementById(id);
  let D = null;                 // the page's data: GET /api/page, then patched by each action's answer
  const built = new Map();      // section key -> its DOM node
  let winFrom = 0, winTo = 0;   // the sections on the page: D.order[winFrom .. winTo)
  let current = null;           // the key of the section the keys act on
  const selFaces = new Set(), selSections = new Set();
  let busy = false, updates = 0;

  const { el, fmt, listing, showPhoto, pagedTiles } = window.FacetagPage;
  const title = (s) => s.kind === "identity" ? s.name : s.kind === "cluster" ? "Cluster " + s.name
    : s.kind === "unsure" ? "Too unsure to group (low quality)" : s.kind === "hidden" ? "Hidden"
    : "Unknown, in no cluster";
  const tagText = (s) => s.kind === "identity" ? "person" : s.kind;

  function toast(text, error) {
    const t = $("toast");
    t.textContent = text; t.hidden = false; t.className = "toast" + (error ? " error" : "");
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, error ? 6000 : 2200);
  }

  async function api(path, body) {
    const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const r = await fetch("api/" + path, Object.assign({ credentials: "same-origin" }, init));
    const data = await r.json().catch(() => ({ error: "the server answered " + r.status }));
    if (!r.ok) { const e = new Error(data.error || r.statusText); e.data = data; e.status = r.status; throw e; }
    return data;
  }

  // One action: POST it, patch the page with the answer. A name the archive has asks first.
  async function act(verb, body) {
    if (busy) return;
    busy = true;
    try {
      apply(await api(verb, body));
    } catch (e) {
      if (e.status === 409 && e.data && e.data.exists) { busy = false; return ask(e.message, () => act(verb, Object.assign({}, body, { merge: true }))); }
      toast(e.message, true);
    } finally { busy = false; }
  }
  function ask(text, yes) {
    $("ask-text").textContent = text;
    $("ask").hidden = false;
    $("ask-yes").focus();
    $("ask-yes").onclick = () => { $("ask").hidden = true; yes(); };
    $("ask-no").onclick = () => { $("ask").hidden = true; };
  }
  function nameAs(body, name) {
    name = (name || "").trim();
    if (!name) return toast("Type a name first", true);
    act("name", Object.assign({ name }, body));
  }

  function apply(update) {
    const currentIndex = Math.max(0, D.order.indexOf(current));
    const firstShown = D.order[winFrom], shownCount = winTo - winFrom;
    const changed = update.removed.concat(Object.keys(update.sections));
    for (const k of update.removed) { delete D.sections[k]; dropBuilt(k); selSections.delete(k); }
    for (const k in update.sections) { D.sections[k] = update.sections[k]; dropBuilt(k); }
    D.order = update.order; D.names = update.names; D.summary = update.summary; D.undo = update.undo;
    selFaces.clear(); selSections.clear();
    if (!D.sections[current]) current = D.order[Math.min(currentIndex, D.order.length - 1)] || null;
    const from = D.order.indexOf(firstShown);  // the window keeps its first section where it can
    winFrom = Math.min(from >= 0 ? from : winFrom, Math.max(0, D.order.length - 1));
    winTo = Math.min(D.order.length, winFrom + shownCount);
    redraw(changed);
    toast(update.done.charAt(0).toUpperCase() + update.done.slice(1));
    document.documentElement.dataset.updates = String(++updates);
  }
  function dropBuilt(k) { const n = built.get(k); if (n) n.remove(); built.delete(k); }

  // Drawing.
  function redraw(changed) {
    drawSummary(); drawNav(changed); drawNames(); drawSelection();
    syncSections();
    markCurrent();
    $("undo").disabled = !D.undo;
    $("undo").title = D.undo ? "Undo (u): " + D.undo : "Nothing to undo";
  }
  function drawSummary() {
    const S = D.summary;
    const cards = [["photos", S.photos, ""], ["faces", S.faces, ""], ["identified", S.identified, "known"],
      ["unknown", S.unknown, "unknown"], ["people", S.identities, "known"],
      ["clusters", S.clusters == null ? "–" : S.clusters, "unknown"], ["hidden", S.hidden, ""],
      ["without a face", S.no_face, ""], ["failed", S.failed, S.failed ? "bad" : ""]];
    $("summary").replaceChildren(...cards.map(([k, v, cls]) => el("div", { class: "card " + cls, "data-key": k },
      el("div", { class: "v", text: typeof v === "number" ? fmt(v) : v }), el("div", { class: "k", text: k }))));
  }
  // The navigation: one item per section, patched in place after an action (a big archive has tens of
  // thousands; rebuilding them all took seconds).
  const navItems = new Map();
  const GROUPS = ["People", "Unknown faces", "Hidden"];
  const navGroup = (s) => s.kind === "identity" ? "People" : s.kind === "hidden" ? "Hidden" : "Unknown faces";
  const groupItem = (group) => el("li", { class: "group", "data-group": group, text: group });
  const groupHeader = (group) => $("nav").querySelector(`li.group[data-group="${group}"]`);
  const laterGroupHeader = (group) => GROUPS.slice(GROUPS.indexOf(group) + 1).map(groupHeader).find(Boolean) || null;
  function navItem(k) {
    const s = D.sections[k];
    const li = el("li", { "data-filter": title(s).toLowerCase(), "data-key": k },
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); goTo(k); } },
        el("span", { text: title(s) }), el("span", { class: "n", text: fmt(s.faces.length) })));
    const q = $("filter").value.trim().toLowerCase();
    li.hidden = q && !li.dataset.filter.includes(q);
    return li;
  }
  function drawNav(changed) {
    if (!changed) {
      navItems.clear();
      const items = [];
      let lastGroup = null;
      for (const k of D.order) {
        const group = navGroup(D.sections[k]);
        if (group !== lastGroup) { items.push(groupItem(group)); lastGroup = group; }
        navItems.set(k, navItem(k));
        items.push(navItems.get(k));
      }
      $("nav").replaceChildren(...items);
      return;
    }
    for (const k of changed) { const li = navItems.get(k); if (li) li.remove(); navItems.delete(k); }
    // Re-insert the changed sections still there, each before the next section (in page order) already listed
    // in its group, else before the next group's header.
    const wanted = new Set(changed.filter((k) => D.sections[k]));
    for (let i = D.order.length - 1, next = null; i >= 0; i--) {
      const k = D.order[i];
      if (wanted.has(k)) {
        const group = navGroup(D.sections[k]);
        if (!groupHeader(group)) $("nav").insertBefore(groupItem(group), laterGroupHeader(group));
        const li = navItem(k);
        navItems.set(k, li);
        const anchor = next && navGroup(D.sections[next]) === group ? navItems.get(next) : null;
        $("nav").insertBefore(li, anchor || laterGroupHeader(group));
      }
      if (navItems.has(k)) next = k;
    }
    for (const header of $("nav").querySelectorAll("li.group")) {
      const item = header.nextElementSibling;
      if (!item || item.classList.contains("group")) header.remove();
    }
  }
  function filterNav() {
    const q = $("filter").value.trim().toLowerCase();
    for (const li of navItems.values()) li.hidden = q && !li.dataset.filter.includes(q);
  }
  let shownNames = [];
  function drawNames() {
    if (D.names.length === shownNames.length && D.names.every((n, i) => n === shownNames[i])) return;
    shownNames = D.names;
    $("names").replaceChildren(...D.names.map((n) => el("option", { value: n })));
  }

  function node(k) {
    if (!built.has(k)) built.set(k, section(D.sections[k]));
    const n = built.get(k);
    n.classList.toggle("selected", selSections.has(k));
    return n;
  }
  function section(s) {
    const grid = el("div", { class: "grid" });
    const pick = el("input", { type: "checkbox", class: "pick", title: "Select (x)", "aria-label": "select " + title(s),
      onchange: () => toggleSection(s.key, pick.checked) });
    const header = el("header", {}, pick, el("h2", { text: title(s) }), el("span", { class: "tag " + s.kind, text: tagText(s) }),
      el("span", { class: "count", text: fmt(s.faces.length) + (s.faces.length === 1 ? " face" : " faces") }));
    const body = s.kind === "cluster" ? { cluster: +s.name } : s.kind === "identity" ? { people: [s.name] } : null;
    if (s.kind === "cluster") {
      const input = el("input", { type: "text", list: "names", placeholder: "Who is this?", "aria-label": "name for cluster " + s.name, class: "name" });
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") { e.preventDefault(); nameAs(body, input.value); }
        else if (e.key === "Escape") input.blur();
      });
      header.append(el("div", { class: "namebar" }, input, el("button", { onclick: () => nameAs(body, input.value) }, "Name"),
        el("button", { onclick: () => act("hide", body), title: "Hide this cluster: strangers (h)" }, "Hide")));
    }
    const box = el("section", { class: "faces", "data-key": s.key, "data-kind": s.kind, "data-name": s.name, "data-count": s.faces.length,
      onclick: () => { current = s.key; markCurrent(); } }, header, grid);
    box.append(pagedTiles(grid, s.faces.length, (i) => tile(s, i), FACES_PER_PAGE));
    return box;
  }
  function tile(s, fi) {
    const f = s.faces[fi], dist = f[F.DIST];
    const doubt = s.kind === "identity" && Math.abs(dist - D.threshold) <= DOUBT;
    const t = el("div", { class: "tile" + (doubt ? " doubt" : ""), "data-face": f[F.ID], title: "Click to select" },
      el("img", { src: "thumbs/" + f[F.ID] + ".jpg", loading: "lazy", width: 96, height: 96, alt: title(s) }),
      el("div", { class: "d" }, el("span", { class: "dist", title: "distance to the nearest person (threshold " + D.threshold + ")", text: dist.toFixed(3) }),
        el("button", { class: "view", title: "See it in its photo", onclick: (e) => { e.stopPropagation(); openViewer(s, fi); } }, "⤢")));
    t.addEventListener("click", () => toggleFace(f[F.ID], t));
    if (selFaces.has(f[F.ID])) t.classList.add("selected");
    return t;
  }
  // Only a window of the sections is on the page (a big archive has tens of thousands): it grows as the
  // page scrolls down or "earlier sections" is pressed, and moves when the navigation jumps elsewhere.
  // Sections are patched in place, not rebuilt: relaying out thousands of them took seconds.
  function syncSections() {
    const box = $("sections");
    let child = box.firstElementChild;
    for (const k of D.order.slice(winFrom, winTo)) {
      const n = node(k);
      if (n !== child) box.insertBefore(n, child); else child = child.nextElementSibling;
    }
    while (child) { const next = child.nextElementSibling; child.remove(); child = next; }
    $("earlier").hidden = winFrom === 0;
    $("earlier").textContent = `↑ ${fmt(winFrom)} earlier section${winFrom === 1 ? "" : "s"}`;
  }
  function renderUpTo(n) {
    winTo = Math.min(Math.max(n, winTo), D.order.length);
    syncSections();
  }
  function showEarlier() {
    const first = $("sections").firstElementChild, top = first && first.getBoundingClientRect().top;
    winFrom = Math.max(0, winFrom - SECTIONS_PER_BATCH);
    syncSections();
    if (first) window.scrollBy(0, first.getBoundingClientRect().top - top);
  }
  $("earlier").onclick = showEarlier;
  function goTo(k) {
    const i = D.order.indexOf(k);
    if (i < 0) return;
    if (i < winFrom || i >= winTo) { winFrom = i; winTo = Math.min(D.order.length, i + SECTIONS_PER_BATCH); syncSections(); }
    current = k; markCurrent();
    built.get(k).scrollIntoView({ block: "start" }); window.scrollBy(0, -52);
  }
  function markCurrent() {
    for (const n of $("sections").querySelectorAll("section.current")) n.classList.remove("current");
    if (current && built.has(current)) built.get(current).classList.add("current");
  }

  // Selection: faces (click) or whole sections (their box, x).
  function toggleFace(id, t) {
    if (selFaces.has(id)) selFaces.delete(id); else selFaces.add(id);
    t.classList.toggle("selected", selFaces.has(id));
    drawSelection();
  }
  function toggleSection(k, on) {
    if (on) selSections.add(k); else selSections.delete(k);
    if (built.has(k)) { built.get(k).classList.toggle("selected", on); built.get(k).querySelector(".pick").checked = on; }
    drawSelection();
  }
  function clearSelection() {
    for (const k of selSections) toggleSection(k, false);
    selFaces.clear();
    for (const t of document.querySelectorAll(".tile.selected")) t.classList.remove("selected");
    drawSelection();
  }
  function selectionBody() {
    const body = {};
    const clusters = [...selSections].filter((k) => k.startsWith("c:")).map((k) => +k.slice(2));
    const people = [...selSections].filter((k) => k.startsWith("p:")).map((k) => k.slice(2));
    if (clusters.length) body.clusters = clusters;
    if (people.length) body.people = people;
    if (selFaces.size) body.faces = [...selFaces];
    return body;
  }
  function drawSelection() {
    const n = selFaces.size, m = selSections.size;
    $("selbar").hidden = !n && !m;
    $("selcount").textContent = [n ? `${n} face${n === 1 ? "" : "s"}` : "", m ? `${m} section${m === 1 ? "" : "s"}` : ""].filter(Boolean).join(" and ") + " selected";
    $("sel-merge").hidden = m < 2 || n > 0;
    $("sel-not").hidden = $("sel-confirm").hidden = !n || m > 0;
    const hiddenOnly = n && [...selFaces].every((id) => D.sections.hidden && D.sections.hidden.faces.some((f) => f[0] === id));
    $("sel-show").hidden = !hiddenOnly; $("sel-hide").hidden = !!hiddenOnly;
  }
  $("sel-name").onclick = () => nameAs(selectionBody(), $("selname").value);
  $("selname").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); nameAs(selectionBody(), $("selname").value); } });
  $("sel-not").onclick = () => act("not", { faces: [...selFaces] });
  $("sel-confirm").onclick = () => act("confirm", { faces: [...selFaces] });
  $("sel-hide").onclick = () => act("hide", selectionBody());
  $("sel-show").onclick = () => act("show", { faces: [...selFaces] });
  $("sel-merge").onclick = merge;
  $("sel-clear").onclick = clearSelection;
  $("undo").onclick = () => act("undo", {});
  $("filter").addEventListener("input", filterNav);
  function merge() {
    const keys = D.order.filter((k) => selSections.has(k)); // page order: the first is kept
    if (keys.every((k) => k.startsWith("c:"))) act("merge", { clusters: keys.map((k) => +k.slice(2)) });
    else if (keys.every((k) => k.startsWith("p:"))) act("merge", { people: keys.map((k) => k.slice(2)) });
    else toast("Merge clusters with clusters, or people with people (to name a cluster as a person, type the name)", true);
  }

  // Keys.
  function step(by) {
    const i = D.order.indexOf(current);
    const next = D.order[Math.max(0, Math.min(D.order.length - 1, (i < 0 ? 0 : i + by)))];
    if (next) goTo(next);
  }
  document.addEventListener("keydown", (e) => {
    if (!$("viewer").hidden) {
      if (e.key === "Escape") closeViewer(); return;
    }
    if (!$("ask").hidden) { if (e.key === "Escape") $("ask").hidden = true; return; }
    const typing = e.target.closest && e.target.closest("input, textarea");
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const s = current && D.sections[current];
    if (e.key === "n" && s && s.kind === "cluster") { e.preventDefault(); goTo(current); built.get(current).querySelector("input.name").focus(); }
    else if (e.key === "j") step(1);
    else if (e.key === "k") step(-1);
    else if (e.key === "x" && current) toggleSection(current, !selSections.has(current));
    else if (e.key === "r" && selFaces.size) act("not", { faces: [...selFaces] });
    else if (e.key === "c" && selFaces.size) act("confirm", { faces: [...selFaces] });
    else if (e.key === "h") { if (selFaces.size || selSections.size) act("hide", selectionBody()); else if (s && s.kind === "cluster") act("hide", { cluster: +s.name }); }
    else if (e.key === "m" && selSections.size > 1) merge();
    else if (e.key === "u" && D.undo) act("undo", {});
    else if (e.key === "Escape") clearSelection();
  });

  // The viewer: the face in its photo.
  function openViewer(s, fi) {
    const f = s.faces[fi], p = D.photos[f[F.PHOTO]];
    showPhoto("photos/" + f[F.PHOTO], p[0], p[1], p[2], f.slice(F.L, F.B + 1));
    $("details").replaceChildren(el("div", { class: "tag " + s.kind, text: tagText(s) }), el("h3", { text: title(s) }),
      el("div", { text: `distance ${f[F.DIST].toFixed(4)} (threshold ${D.threshold})` }),
      el("p", { class: "path", text: p[0] }), el("div", { text: `face id ${f[F.ID]}` }));
    $("viewer").hidden = false;
  }
  const closeViewer = () => { $("viewer").hidden = true; $("photo").removeAttribute("src"); };
  $("viewer-close").onclick = closeViewer;
  $("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) closeViewer(); });

  api("page").then((data) => {
    D = data;
    $("meta").textContent = `store ${D.store} · model ${D.model_id.split(":")[0]} · threshold ${D.threshold}`;
    listing("no-face", "Photos without a face", D.no_face, "Every photo read had a face.");
    listing("failed", "Files that could not be read", D.failed, "No file failed.");
    current = D.order[0] || null;
    redraw();
    renderUpTo(SECTIONS_PER_BATCH);
    markCurrent();
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) renderUpTo(winTo + SECTIONS_PER_BATCH); },
      { rootMargin: "1200px" }).observe($("more-sections"));
    window.FACETAG_READY_MS = performance.now();
    document.documentElement.dataset.ready = "1";
  }).catch((e) => { toast("Cannot load the page: " + e.message, true); });
})();
