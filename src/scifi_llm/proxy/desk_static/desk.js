// The writing desk: drafts on the left, the draft and the model in the middle, the lore on the right.
// Everything goes through the proxy that served this page; nothing is fetched from anywhere else.

const $ = (id) => document.getElementById(id);
const AUTOSAVE_MS = 800;
const CONTEXT_CHARS = 6000; // how much of the draft before the cursor the model reads
// A long draft is edited a part at a time: a browser lays out a whole textarea on every key press, and
// at 100,000 words that takes longer than a frame. Parts end at a heading or after PART_WORDS words.
const PART_WORDS = 5000;

// `scifi-llm desk` opens /desk#key=... when the proxy has a key: the key stays in this tab, out of the
// address bar and out of every server's log.
function readKey() {
  if (!location.hash.startsWith("#key=")) return false;
  sessionStorage.setItem("scifi-llm-key", decodeURIComponent(location.hash.slice(5)));
  history.replaceState(null, "", location.pathname);
  return true;
}
readKey();
const state = { name: null, saved: "", timer: null, running: null, parts: [""], part: 0 };

function wordsIn(text) {
  const words = text.match(/\S+/g);
  return words ? words.length : 0;
}

// The draft cut at paragraph ends into parts that join back to exactly the same text. A part ends with
// its last paragraph's text (the blank line after it opens the next part), so what is typed at the end
// of a part continues that paragraph.
function splitParts(text) {
  const cuts = [0];
  const paragraphEnd = /\n\s*\n/g;
  let words = 0;
  let last = 0;
  for (let match = paragraphEnd.exec(text); match; match = paragraphEnd.exec(text)) {
    const next = match.index + match[0].length;
    words += wordsIn(text.slice(last, next));
    last = next;
    if (words >= PART_WORDS || (text.startsWith("#", next) && words >= PART_WORDS / 4)) {
      cuts.push(match.index);
      words = 0;
    }
  }
  if (cuts.length > 1 && wordsIn(text.slice(cuts[cuts.length - 1])) === 0) cuts.pop();
  return cuts.map((start, index) => text.slice(start, cuts[index + 1] ?? text.length));
}

// The whole draft: the other parts as they are, the open one as the textarea holds it.
function wholeText() {
  return state.parts.map((part, index) => (index === state.part ? $("draft").value : part)).join("");
}

function showParts(text, part = 0) {
  state.parts = splitParts(text);
  state.part = Math.min(part, state.parts.length - 1);
  state.otherWords = wordsIn(text) - wordsIn(state.parts[state.part]);
  $("part-picker").hidden = state.parts.length < 2;
  $("part").replaceChildren(
    ...state.parts.map((partText, index) => {
      const first = partText.trim().split("\n")[0].slice(0, 60);
      return Object.assign(document.createElement("option"), { value: index, textContent: `${index + 1} of ${state.parts.length}: ${first}` });
    }),
  );
  $("part").value = String(state.part);
  $("draft").value = state.parts[state.part];
}

function switchPart() {
  showParts(wholeText(), Number($("part").value));
  countWords();
  if (state.findings) placeMarks();
}

function headers(extra = {}) {
  const key = sessionStorage.getItem("scifi-llm-key");
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const init = { ...options, headers: headers(options.body ? { "content-type": "application/json" } : {}) };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) {
    throw Object.assign(new Error(data.error ? data.error.message : response.statusText), { status: response.status });
  }
  return data;
}

function say(text) {
  $("status").textContent = text;
}

function button(label, onClick, className = "") {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.className = className;
  element.addEventListener("click", onClick);
  return element;
}

async function listDrafts() {
  const { drafts } = await api("/desk/api/drafts");
  $("drafts").replaceChildren(
    ...drafts.map((draft) => {
      const item = document.createElement("li");
      item.append(button(draft.name, () => openDraft(draft.name), draft.name === state.name ? "current" : ""));
      return item;
    }),
  );
}

async function openDraft(name) {
  await saveNow();
  const { text } = await api(`/desk/api/drafts/${encodeURI(name)}`);
  Object.assign(state, { name, saved: text, findings: null });
  $("marks").replaceChildren();
  showParts(text);
  $("draft").disabled = false;
  $("draft-name").textContent = name;
  countWords();
  await Promise.all([listDrafts(), listVersions(), showSteering()]);
  say(`opened ${name}`);
}

async function saveNow() {
  clearTimeout(state.timer);
  const text = wholeText();
  if (!state.name || text === state.saved) return;
  const body = JSON.stringify({ text });
  await api(`/desk/api/drafts/${encodeURI(state.name)}`, { method: "PUT", body });
  state.saved = text;
  say(`saved ${state.name} at ${new Date().toLocaleTimeString()}`);
  listVersions();
}

function scheduleSave() {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => saveNow().catch((error) => say(`not saved: ${error.message}`)), AUTOSAVE_MS);
  clearTimeout(state.counting);
  state.counting = setTimeout(countWords, 300); // counting 100,000 words on every key would lag typing
}

function countWords() {
  $("word-count").textContent = `${(state.otherWords || 0) + wordsIn($("draft").value)} words`;
}

async function listVersions() {
  if (!state.name) return;
  const { versions } = await api(`/desk/api/versions/${encodeURI(state.name)}`);
  $("versions").replaceChildren(
    ...versions.slice(0, 30).map((version) => {
      const item = document.createElement("li");
      const label = `${version.saved.replace("T", " ").slice(0, 19)} (${version.words} words)`;
      item.append(button(label, () => restore(version.id)));
      return item;
    }),
  );
}

async function restore(version) {
  await saveNow();
  const body = JSON.stringify({ name: state.name, version });
  const { text } = await api("/desk/api/restore", { method: "POST", body });
  Object.assign(state, { saved: text });
  showParts(text, state.part);
  countWords();
  listVersions();
  say(`restored the version of ${version.slice(0, 8)}`);
}

async function newDraft() {
  const name = prompt("Name of the new draft (e.g. chapter-04.md)");
  if (!name) return;
  const body = JSON.stringify({ text: "" });
  await api(`/desk/api/drafts/${encodeURI(name)}`, { method: "PUT", body });
  await openDraft(name);
}

async function renameDraft() {
  if (!state.name) return;
  const newName = prompt("New name", state.name);
  if (!newName || newName === state.name) return;
  await saveNow();
  await api("/desk/api/rename", { method: "POST", body: JSON.stringify({ name: state.name, new_name: newName }) });
  await openDraft(newName);
}

// Pins and blocks are kept per draft in this browser; the proxy gets them with each request.
function steering() {
  const saved = localStorage.getItem(`scifi-llm-steer:${state.name}`);
  return saved ? JSON.parse(saved) : { pin: [], block: [] };
}

function steer(source, kind) {
  const current = steering();
  const other = kind === "pin" ? "block" : "pin";
  current[other] = current[other].filter((name) => name !== source);
  current[kind] = current[kind].includes(source)
    ? current[kind].filter((name) => name !== source)
    : [...current[kind], source];
  localStorage.setItem(`scifi-llm-steer:${state.name}`, JSON.stringify(current));
  showSteering();
}

function showSteering() {
  const current = steering();
  const rows = [
    ...current.pin.map((source) => ["pinned", source, "pin"]),
    ...current.block.map((source) => ["blocked", source, "block"]),
  ];
  $("steering").replaceChildren(
    ...rows.map(([label, source, kind]) => {
      const item = document.createElement("li");
      item.append(`${label}: ${source} `, button("undo", () => steer(source, kind)));
      return item;
    }),
  );
}

async function loadModels() {
  try {
    const { data } = await api("/v1/models");
    $("model").replaceChildren(
      ...data.map((model) => Object.assign(document.createElement("option"), { value: model.id, textContent: model.id })),
    );
  } catch (error) {
    say(`no model list: ${error.message}`);
  }
}

const TASKS = {
  continue: {
    system: "You are the writer's co-author. Continue their draft from exactly where it stops, in the same voice, tense and point of view. Write only the continuation.",
    ask: (before) => before || "Begin the story.",
  },
  rewrite: {
    system: "You are the writer's editor. Rewrite the passage as the writer asks, in their voice. Reply with the rewritten passage only.",
    ask: (_, passage, instruction) => `Instruction: ${instruction || "make it better"}\n\nPassage:\n${passage}`,
  },
  describe: {
    system: "You are the writer's co-author. Rewrite the passage with a sensory pass: what is seen, heard, smelled, touched and felt, without changing what happens or the voice. Reply with the passage only.",
    ask: (_, passage) => passage,
  },
  chat: {
    system: "Answer the writer's question about their world from the notes you are given. Say so when the notes do not tell.",
    ask: (_, question) => question,
  },
};

// One request through the proxy, streamed into `target`; `kind` picks the task and its prompt.
async function generate(kind = "continue") {
  if (state.running || (!state.name && kind !== "chat")) return;
  const draft = $("draft");
  const [from, to] = [draft.selectionStart, draft.selectionEnd];
  const passage = kind === "chat" ? $("question").value : draft.value.slice(from, to);
  if ((kind === "rewrite" || kind === "describe") && !passage.trim()) return say("select the passage first");
  const earlier = state.parts.slice(0, state.part).join("").slice(-CONTEXT_CHARS);
  const before = (earlier + draft.value.slice(0, from)).slice(-CONTEXT_CHARS);
  const task = TASKS[kind];
  const body = {
    model: $("model").value || undefined,
    stream: true,
    temperature: Number($("temperature").value),
    max_tokens: Number($("max-tokens").value),
    messages: [
      { role: "system", content: task.system },
      { role: "user", content: task.ask(before, passage, $("instruction").value) },
    ],
    lore: steering(),
  };
  const target = kind === "chat" ? $("answer") : $("generated");
  state.running = new AbortController();
  state.replace = kind === "continue" ? [from, from] : [from, to];
  target.textContent = "";
  $("proposal").hidden = kind === "chat";
  $("stop").disabled = false;
  $("continue").disabled = true;
  say("writing...");
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers({ "content-type": "application/json" }),
      body: JSON.stringify(body),
      signal: state.running.signal,
    });
    if (!response.ok) throw new Error((await response.json()).error.message);
    await readStream(response, target);
    await showLore(response.headers.get("x-lore-request-id"));
    say(kind === "chat" ? "answered" : "done: accept or discard");
  } catch (error) {
    say(error.name === "AbortError" ? "stopped" : `failed: ${error.message}`);
  } finally {
    state.running = null;
    $("stop").disabled = true;
    $("continue").disabled = false;
  }
}

async function readStream(response, target) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) {
      if (!line.startsWith("data: {")) continue;
      const event = JSON.parse(line.slice(6));
      if (event.error) throw new Error(event.error.message);
      const text = event.choices?.[0]?.delta?.content;
      if (text) target.append(text);
    }
  }
}

async function showLore(requestId) {
  if (!requestId) return;
  const given = await api(`/lore/${requestId}`);
  const spent = given.passages.reduce((sum, passage) => sum + passage.tokens, 0);
  $("lore-summary").textContent = given.passages.length
    ? `${given.passages.length} notes, ${spent} tokens (${given.lore})`
    : `no lore (${given.lore})`;
  $("lore").replaceChildren(
    ...given.passages.map((passage) => {
      const item = document.createElement("li");
      const source = Object.assign(document.createElement("div"), { className: "source", textContent: passage.source });
      const why = Object.assign(document.createElement("div"), {
        className: "why",
        textContent: `${passage.heading} · ${passage.tokens} tokens · ${passage.reasons.join(", ")}`,
      });
      const text = document.createElement("details");
      text.append(Object.assign(document.createElement("summary"), { textContent: "what the model read" }), passage.text);
      item.append(source, why, text, button("pin", () => steer(passage.source, "pin")), button("block", () => steer(passage.source, "block")));
      item.append(button("open", () => openNote(passage.source)));
      return item;
    }),
  );
}

async function searchLore() {
  const query = $("lore-search").value;
  const { passages } = await api(`/desk/api/lore?q=${encodeURIComponent(query)}`);
  $("lore-found").replaceChildren(
    ...passages.map((passage) => {
      const item = document.createElement("li");
      item.append(
        button(`${passage.source} — ${passage.heading}`, () => openNote(passage.source)),
        button("pin", () => steer(passage.source, "pin")),
      );
      return item;
    }),
  );
}

async function listEntities() {
  const { entities } = await api("/desk/api/entities");
  $("entities").replaceChildren(
    ...entities.map((entity) => {
      const item = document.createElement("li");
      const aliases = entity.aliases.length ? ` (${entity.aliases.join(", ")})` : "";
      item.append(button(entity.name + aliases, () => openNote(entity.source)));
      return item;
    }),
  );
}

async function openNote(name) {
  const note = await api(`/desk/api/notes/${encodeURI(name)}`);
  $("note").hidden = false;
  $("note-name").textContent = name;
  $("note-text").value = note.text;
  const named = note.entities.map((entity) => `${entity.name}: ${entity.aliases.join(", ") || "no aliases"}`);
  $("note-aliases").textContent = named.join(" · ");
}

async function saveNote() {
  const name = $("note-name").textContent;
  say(`saving ${name} and indexing it...`);
  const body = JSON.stringify({ text: $("note-text").value });
  const result = await api(`/desk/api/notes/${encodeURI(name)}`, { method: "PUT", body });
  say(result.indexed ? `note saved and indexed: ${name}` : `note saved, not yet indexed: ${result.reason}`);
  listEntities();
}

function showViewer(title, searchable) {
  $("writing").hidden = true;
  $("viewer").hidden = false;
  $("viewer-title").textContent = title;
  $("history-search").hidden = !searchable;
  $("viewer-body").replaceChildren();
}

function closeViewer() {
  $("viewer").hidden = true;
  $("writing").hidden = false;
}

async function showHistory() {
  showViewer("History", true);
  const query = $("history-search").value;
  const { enabled, requests } = await api(`/desk/api/history?q=${encodeURIComponent(query)}`);
  if (!enabled) {
    $("viewer-list").replaceChildren(Object.assign(document.createElement("li"), { textContent: "history is off" }));
    return;
  }
  $("viewer-list").replaceChildren(
    ...requests.map((row) => {
      const item = document.createElement("li");
      const when = new Date(row.time * 1000).toLocaleString();
      const head = Object.assign(document.createElement("div"), { className: "why", textContent: `${when} · ${row.status} · lore ${row.lore}` });
      const query = Object.assign(document.createElement("div"), { textContent: row.query.slice(0, 300) });
      const sources = Object.assign(document.createElement("div"), { className: "source", textContent: row.sources.join(", ") });
      item.append(head, query, sources);
      return item;
    }),
  );
}

async function showReports() {
  showViewer("Reports", false);
  const { reports } = await api("/desk/api/reports");
  $("viewer-list").replaceChildren(
    ...reports.map((report) => {
      const item = document.createElement("li");
      item.append(`${report.name}: `, ...report.files.map((file) => button(file, () => showReport(`${report.name}/${file}`))));
      return item;
    }),
  );
}

async function showReport(path) {
  const response = await fetch(`/desk/api/reports/${encodeURI(path)}`, { headers: headers() });
  if (!response.ok) return say(`cannot open ${path}`);
  const kind = response.headers.get("content-type");
  let shown;
  if (kind.startsWith("image/")) {
    shown = Object.assign(document.createElement("img"), { src: URL.createObjectURL(await response.blob()), alt: path });
  } else if (kind.startsWith("text/html")) {
    shown = Object.assign(document.createElement("iframe"), { srcdoc: await response.text(), title: path });
    shown.sandbox = ""; // a report is shown, never run
  } else {
    shown = Object.assign(document.createElement("pre"), { textContent: await response.text() });
  }
  $("viewer-body").replaceChildren(shown);
  say(`showing ${path}`);
}

function accept() {
  const draft = $("draft");
  const text = $("generated").textContent;
  const [from, to] = state.replace ?? [draft.value.length, draft.value.length];
  const replacing = from !== to;
  const joiner = !replacing && from > 0 && !/\s$/.test(draft.value.slice(0, from)) && !/^\s/.test(text) ? " " : "";
  draft.value = draft.value.slice(0, from) + joiner + text + draft.value.slice(to);
  draft.selectionStart = draft.selectionEnd = from + joiner.length + text.length;
  discard();
  scheduleSave();
}

function discard() {
  $("proposal").hidden = true;
  $("generated").textContent = "";
}

function keys(event) {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    event.preventDefault();
    generate("continue");
  } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
    event.preventDefault();
    saveNow();
  } else if (event.key === "Escape" && state.running) {
    state.running.abort();
  }
}

// Continuity marks: what `scifi-llm check` finds, in the margin beside the line it is about, with the
// note that says otherwise one click away. Marks belong to the text as checked: Check again after edits.
async function checkDraft() {
  if (!state.name) return;
  say("checking the draft against the lore...");
  const body = JSON.stringify({ name: state.name, text: wholeText() });
  const { findings } = await api("/desk/api/check", { method: "POST", body });
  state.findings = findings.filter((finding) => finding.kind !== "not in lore");
  placeMarks();
  const unknown = new Set(findings.filter((finding) => finding.kind === "not in lore").map((finding) => finding.text));
  const names = unknown.size ? `; names the lore does not know: ${[...unknown].join(", ")}` : "";
  say(`${state.findings.length} contradiction${state.findings.length === 1 ? "" : "s"} with the lore${names}`);
}

// The first line of the open part, counted in the whole draft (findings count lines of the whole draft).
function partFirstLine() {
  return state.parts.slice(0, state.part).join("").split("\n").length;
}

// Where a line of the textarea starts, in pixels from its top: a hidden copy of the textarea, same
// width and font, holding the lines before it.
function lineTop(line) {
  const area = $("draft");
  const style = getComputedStyle(area);
  const mirror = state.mirror || (state.mirror = document.body.appendChild(document.createElement("div")));
  for (const name of ["font", "padding", "border", "letterSpacing", "lineHeight", "boxSizing"]) mirror.style[name] = style[name];
  Object.assign(mirror.style, { position: "absolute", visibility: "hidden", left: "-10000px", top: "0", width: `${area.offsetWidth}px`, whiteSpace: "pre-wrap", overflowWrap: "break-word" });
  mirror.textContent = area.value.split("\n").slice(0, line - 1).join("\n") + (line > 1 ? "\n" : "");
  const marker = mirror.appendChild(document.createElement("span"));
  marker.textContent = "|";
  return marker.offsetTop;
}

function placeMarks() {
  const area = $("draft");
  const first = partFirstLine();
  const lines = area.value.split("\n").length;
  let bottom = 0;
  const marks = (state.findings || []).filter((finding) => finding.line >= first && finding.line < first + lines).map((finding) => {
    const mark = document.createElement("li");
    mark.className = "mark";
    mark.title = finding.quote ? `${finding.source}: ${finding.quote}` : finding.source;
    const words = document.createElement("span");
    words.textContent = `${finding.kind}: "${finding.text}", the lore says ${finding.expected} `;
    words.addEventListener("click", () => selectLine(finding.line - first + 1));
    mark.append(words, button("note", () => openNote(finding.source).catch((error) => say(error.message))));
    return [mark, lineTop(finding.line - first + 1) - area.scrollTop];
  });
  $("marks").replaceChildren(...marks.map(([mark]) => mark));
  for (const [mark, top] of marks) {
    const at = Math.max(top, bottom);
    mark.style.top = `${at}px`;
    mark.hidden = at < -20 || at > area.clientHeight;
    bottom = at + mark.offsetHeight + 2;
  }
}

function selectLine(line) {
  const area = $("draft");
  const lines = area.value.split("\n");
  const start = lines.slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
  area.focus();
  area.setSelectionRange(start, start + lines[line - 1].length);
}

function toggleTheme() {
  const dark = document.documentElement.dataset.theme !== "dark";
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  localStorage.setItem("scifi-llm-theme", dark ? "dark" : "light");
}

document.documentElement.dataset.theme = localStorage.getItem("scifi-llm-theme") || "light";
$("draft").addEventListener("input", scheduleSave);
$("part").addEventListener("change", switchPart);
$("save").addEventListener("click", saveNow);
$("check").addEventListener("click", () => checkDraft().catch((error) => say(`not checked: ${error.message}`)));
$("draft").addEventListener("scroll", () => state.findings && placeMarks());
$("new-draft").addEventListener("click", newDraft);
$("rename-draft").addEventListener("click", renameDraft);
$("continue").addEventListener("click", () => generate("continue"));
$("rewrite").addEventListener("click", () => generate("rewrite"));
$("describe").addEventListener("click", () => generate("describe"));
$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  generate("chat");
});
$("stop").addEventListener("click", () => state.running && state.running.abort());
$("accept").addEventListener("click", accept);
$("discard").addEventListener("click", discard);
$("theme").addEventListener("click", toggleTheme);
$("lore-search").addEventListener("input", () => {
  clearTimeout(state.searching);
  state.searching = setTimeout(() => searchLore().catch((error) => say(`search failed: ${error.message}`)), 250);
});
$("save-note").addEventListener("click", () => saveNote().catch((error) => say(`note not saved: ${error.message}`)));
$("close-note").addEventListener("click", () => ($("note").hidden = true));
$("show-history").addEventListener("click", () => showHistory().catch((error) => say(error.message)));
$("show-reports").addEventListener("click", () => showReports().catch((error) => say(error.message)));
$("close-viewer").addEventListener("click", closeViewer);
$("history-search").addEventListener("input", () => {
  clearTimeout(state.historyTimer);
  state.historyTimer = setTimeout(() => showHistory().catch((error) => say(error.message)), 250);
});
document.addEventListener("keydown", keys);
window.addEventListener("beforeunload", () => saveNow());
async function start() {
  try {
    await listDrafts();
  } catch (error) {
    const noKey = "this desk needs the proxy's key: open it with `scifi-llm desk`";
    return say(error.status === 401 ? noKey : `cannot list drafts: ${error.message}`);
  }
  loadModels();
  listEntities().catch(() => {});
}

window.addEventListener("hashchange", () => readKey() && start());
start();
